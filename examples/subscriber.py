"""Minimal eventclipd subscriber: print each window's best label and notice lost messages.

Run: python examples/subscriber.py tcp://127.0.0.1:5556
"""

import json
import sys

import zmq

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5556"
sock = zmq.Context().socket(zmq.SUB)
sock.setsockopt_string(zmq.SUBSCRIBE, "eventclip/")  # labels, anomaly, stats, status
sock.connect(endpoint)
expected = {}
while True:
    topic, payload = sock.recv_multipart()
    msg, topic = json.loads(payload), topic.decode()
    if topic in expected and msg["seq"] != expected[topic]:
        print(f"lost {msg['seq'] - expected[topic]} message(s) on {topic}")
    expected[topic] = msg["seq"] + 1
    if topic.endswith("/labels") and msg["labels"]:
        best = msg["labels"][0]
        print(f"{msg['t_start_us']:>12} µs  {best['label']:<20} {best['score']:.2f}  ({msg['n_events']} events)")
    elif topic.endswith("/status"):
        print(f"status: {msg['state']} {msg['detail']}")
        if msg["state"] == "offline":
            break
