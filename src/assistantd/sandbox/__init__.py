"""The code interpreter: Docker sandboxes with a persistent Python kernel per thread."""
