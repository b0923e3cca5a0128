"""p2pbackup: friends back each other up.

Layers (imports point down only; see docs/architecture.md):
core -> storage -> net -> engine -> daemon -> gui | cli
"""

__version__ = "0.1.0"
