"""The chat path: free-text routing, clarifications, and the chat desk that runs a turn as a one-step run."""
