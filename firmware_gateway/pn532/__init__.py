"""Warmcard's PN532 stack over HSU (UART): framing → transport → device API, and an emulator."""
