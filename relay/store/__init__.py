"""Everything that talks to Redis. The rest of the relay calls these modules, never Redis itself."""
