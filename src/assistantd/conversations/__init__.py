"""The Conversations API: threads, read and extended as lists of items."""
