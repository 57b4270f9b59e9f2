"""G-code over a serial line: the line protocol (pure), the streamer (pyserial) and a simulated firmware."""
