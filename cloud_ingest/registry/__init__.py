"""The registry: sites, kiosks, people, cards, card history, and the area hierarchy."""
