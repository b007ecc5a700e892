"""Everything on the Pi that touches hardware or the network: readers, GPIO, outbox, uplink."""
