"""Loopback TCP bandwidth: one connection, 1 MiB writes, prints GB/s.

The ceiling any client/broker pair on this machine shares (BENCHMARKS.md).
"""
import socket
import threading
import time

TOTAL = 4 << 30
CHUNK = 1 << 20


def drain(server):
    conn, _ = server.accept()
    with conn:
        while conn.recv(CHUNK):
            pass


server = socket.create_server(("127.0.0.1", 0))
reader = threading.Thread(target=drain, args=(server,))
reader.start()
client = socket.create_connection(server.getsockname())
chunk = b"\0" * CHUNK
started = time.perf_counter()
for _ in range(TOTAL // CHUNK):
    client.sendall(chunk)
client.close()
reader.join()
print(f"{TOTAL / (time.perf_counter() - started) / 1e9:.2f}")
