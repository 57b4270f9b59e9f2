"""How fast a fleet process reads statuses off its MQTT connection, three readers side by side in one
run: paho's own reads (*stock*); the fleet's link reading the socket a chunk at a time but leaving each
PUBLISH to paho (*chunked*); and the link as it is (*link*), which also reads a plain PUBLISH itself
(``fleet.mqtt.plain_publish``) instead of through paho's message and properties objects.

A Mosquitto of its own (a free port, anonymous, on 127.0.0.1) and one publisher sending status-sized
QoS 0 messages for 5,000 printer topics at ``--rate`` a second. Each reader runs in a process of its
own, in turns (stock, chunked, link, stock, ...), for ``--seconds``:

- *busy*: beside a thread that keeps the GIL busy, as a fleet's ingest, pages and passes do: the
  messages a second the reader takes in;
- *quiet*: alone, at the same rate: the reader's CPU time per message.

    .venv/bin/python bench/mqtt_read.py                 # 20,000 a second, 6 s a turn, 2 rounds
    .venv/bin/python bench/mqtt_read.py --rate 8000 --rounds 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fleet.mqtt import BrokerAddress, MqttLink

PAYLOAD = (
    b'{"v":1,"state":"idle","ts":1733400000.123,"temperatures":{"T0":{"actual":21.5,"target":0.0},'
    b'"B":{"actual":22.0,"target":0.0}},"progress":null,"job_id":null,"eta":null}'
)
TOPICS = 5000
KINDS = ("stock", "chunked", "link")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def publish(port: int, rate: int, seconds: float) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=paho.MQTTv311)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start, sent = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < int(elapsed * rate):
            client.publish(f"crowdfab/p{sent % TOPICS:05d}/status", PAYLOAD, qos=0)
            sent += 1
        time.sleep(0.001)
    client.loop_stop()
    client.disconnect()


def read(kind: str, port: int, seconds: float, busy: bool, out: mp.Queue) -> None:  # type: ignore[type-arg]
    count = 0
    lock = threading.Lock()

    def take(topic: str, payload: bytes) -> None:
        nonlocal count
        with lock:
            count += 1

    ready = threading.Event()
    if kind in ("chunked", "link"):
        link = MqttLink(f"bench-{kind}", BrokerAddress("127.0.0.1", port), mqtt5=True, on_connect=ready.set)
        if kind == "chunked":
            link._client.deliver = None  # every PUBLISH through paho's own decoding, as before
        link.subscribe("crowdfab/+/status", take, qos=0)
        link.start()
        stop_reader = link.close
    else:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-stock", protocol=paho.MQTTv5)
        client.on_message = lambda c, u, m: take(m.topic, bytes(m.payload))
        client.on_connect = lambda c, u, f, r, p: (c.subscribe("crowdfab/+/status", 0), ready.set())
        client.connect("127.0.0.1", port)
        client.loop_start()
        stop_reader = client.loop_stop
    ready.wait(10)
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i

    if busy:
        threading.Thread(target=spin, daemon=True).start()
    time.sleep(1.0)  # the publisher is running: measure from here
    with lock:
        first = count
    wall, cpu = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    with lock:
        taken = count - first
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    stop_reader()
    out.put((taken / wall, cpu / taken * 1e6 if taken else float("nan")))


def turn(kind: str, port: int, rate: int, seconds: float, busy: bool) -> tuple[float, float]:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    reader = mp.Process(target=read, args=(kind, port, seconds, busy, out))
    reader.start()
    time.sleep(0.5)
    publisher = mp.Process(target=publish, args=(port, rate, seconds + 2.0))
    publisher.start()
    result: tuple[float, float] = out.get(timeout=seconds + 30)
    reader.join(10)
    publisher.join(10)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=20_000, help="messages a second (default 20,000)")
    parser.add_argument("--seconds", type=float, default=6.0, help="each turn's measured time")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
        broker = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
            for _ in range(args.rounds):
                for busy in (True, False):
                    for kind in KINDS:
                        results.setdefault((kind, busy), []).append(
                            turn(kind, port, args.rate, args.seconds, busy)
                        )
        finally:
            broker.terminate()
            broker.wait(10)
    rate = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in results.items() if not k[1]}
    print(f"MQTT 5 statuses at {args.rate}/s, {args.rounds} rounds of {args.seconds:g} s a reader (medians):")
    print(f"{'reader':>8} {'busy: taken/s':>14} {'quiet: taken/s':>15} {'quiet: CPU µs each':>19}")
    for kind in KINDS:
        print(f"{kind:>8} {rate[kind, True]:>14.0f} {rate[kind, False]:>15.0f} {cpu[kind, False]:>19.1f}")
    for kind, base in (("chunked", "stock"), ("link", "stock"), ("link", "chunked")):
        print(
            f"{kind} / {base}: {rate[kind, True] / rate[base, True]:.2f}x the messages beside a busy "
            f"thread, {cpu[kind, False] / cpu[base, False]:.2f}x the CPU a message when alone"
        )


if __name__ == "__main__":
    main()
