"""The kiosk application: what a tap means (`policy`, pure) and the running kiosk composed of
the gateway's parts (`runtime`), with its screen, voice, LED patterns and simulator."""
