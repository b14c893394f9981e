"""Conversation items: the shapes both API surfaces share."""
