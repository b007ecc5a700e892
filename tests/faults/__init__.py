"""Network fault injection for tests (TcpProxy)."""
