"""The drone fleet simulator."""
