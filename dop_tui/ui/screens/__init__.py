"""Modal screens of the workbench: help, new job, open, save, the GPU offer."""
