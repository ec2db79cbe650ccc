"""The top layer: the command dispatcher, the LightningCLI, run folders, user-facing errors,
plug-in discovery and the sweep.
"""
