"""What a tap means at this site: entrance and canteen policy, local roster, on-site screen."""
