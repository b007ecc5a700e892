"""Operations on stored data: reconcile against the kiosks, request resends, read device status."""
