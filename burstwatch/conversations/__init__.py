"""Conversations: one local host and one remote party, judged over a horizon of hours."""
