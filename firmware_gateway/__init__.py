"""The edge: everything on the Pi that touches hardware or the network (readers, PN532, GPIO
pins, outbox, uplink, clock, doctor). It never imports `kiosk`, which is built on top of it."""
