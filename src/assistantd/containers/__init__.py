"""The Containers API: named code interpreter sandboxes and their files."""
