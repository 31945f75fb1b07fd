//! Driving the proxy over stdio as an MCP client would.
