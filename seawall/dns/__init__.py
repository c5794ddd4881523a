"""The DNS side: wire parsing, the answer engine, rendering, UDP/TCP serving, RRL."""
