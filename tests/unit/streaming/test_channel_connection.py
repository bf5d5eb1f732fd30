from __future__ import annotations

import socket
import threading
import time

import pytest
from wsproto.events import CloseConnection, Ping, Pong

from cri.streaming import websocket
from cri.streaming.channel_connection import ConnectionClosed, Limits, WriteTimeout
from cri.streaming.channel_protocol import CLOSE_SIGNAL, ERROR, RESIZE, STDERR, STDIN, STDOUT, StreamKind
from cri.streaming.portforward_channels import initial_messages, readable_channels
from tests.unit.streaming.conftest import Connect
from tests.unit.streaming.wsclient import Client, client_frame, read_request

SMALL = Limits(channel_buffer=1024, max_message=1024, write_chunk=1024, write_timeout=0.5,
                         close_timeout=0.5)


def test_client_channels_arrive_each_on_its_own(connect: Connect) -> None:
    connection, client = connect(["v4.channel.k8s.io"])
    client.message(b"\x00echo hi\n")
    client.message(b'\x04{"Width":80,"Height":24}')
    client.message(b"\x00exit\n")
    assert connection.read(RESIZE, timeout=5) == b'{"Width":80,"Height":24}'
    # The second stdin message follows the resize: it may not have been taken in yet.
    stdin = b""
    while len(stdin) < len(b"echo hi\nexit\n"):
        stdin += connection.read(STDIN, timeout=5)
    assert stdin == b"echo hi\nexit\n"


def test_server_channels_reach_the_client_in_order(connect: Connect) -> None:
    connection, client = connect(["v5.channel.k8s.io"])
    connection.write(STDOUT, b"")  # the "streams are ready" signal the kubelet sends first
    connection.write(STDOUT, b"out")
    connection.write(STDERR, b"err")
    connection.write(ERROR, b'{"status":"Success"}')
    assert [client.receive() for _ in range(4)] == [b"\x01", b"\x01out", b"\x02err", b'\x03{"status":"Success"}']


def test_base64_both_ways_in_text_frames(connect: Connect) -> None:
    connection, client = connect(["v4.base64.channel.k8s.io"])
    client.message("0Zm9vCg==")  # "foo\n" on stdin
    assert connection.read(STDIN, timeout=5) == b"foo\n"
    connection.write(STDOUT, b"bar\n")
    assert client.receive() == "1YmFyCg=="


def test_a_long_write_goes_in_bounded_messages(connect: Connect) -> None:
    connection, client = connect(limits=Limits(write_chunk=1000))
    data = bytes(range(256)) * 10
    connection.write(STDOUT, data)
    messages = [client.receive() for _ in range(3)]
    assert [len(m) for m in messages] == [1001, 1001, 561]
    assert all(isinstance(m, bytes) and m[0] == STDOUT for m in messages)
    assert b"".join(m[1:] for m in messages if isinstance(m, bytes)) == data


def test_concurrent_writers_never_interleave_inside_a_message(connect: Connect) -> None:
    connection, client = connect(limits=Limits(write_chunk=4096))
    writers = [threading.Thread(target=connection.write, args=(channel, bytes([channel]) * 100_000))
               for channel in (STDOUT, STDERR, ERROR)]
    for writer in writers:
        writer.start()
    received = {STDOUT: 0, STDERR: 0, ERROR: 0}
    while sum(received.values()) < 300_000:
        message = client.receive()
        assert isinstance(message, bytes)
        assert message[1:] == bytes([message[0]]) * (len(message) - 1)
        received[message[0]] += len(message) - 1
    for writer in writers:
        writer.join(5)
    assert received == {STDOUT: 100_000, STDERR: 100_000, ERROR: 100_000}


def test_data_on_a_channel_the_client_may_not_send_on_is_dropped(connect: Connect) -> None:
    connection, client = connect(readable={RESIZE})
    client.message(b"\x00stdin was not asked for")
    client.message(b"\x01nor is stdout the client's")
    client.message(b"\x04resize")
    assert connection.read(RESIZE, timeout=5) == b"resize"
    with pytest.raises(ValueError):
        connection.read(STDIN)


def test_v5_close_signal_ends_one_channel_after_its_data(connect: Connect) -> None:
    connection, client = connect(["v5.channel.k8s.io"])
    client.message(b"\x00last line\n")
    client.message(bytes([CLOSE_SIGNAL, STDIN]))
    client.message(b"\x04resize")
    assert connection.read(STDIN, timeout=5) == b"last line\n"
    assert connection.read(STDIN, timeout=5) == b""
    assert connection.read(RESIZE, timeout=5) == b"resize"
    connection.write(STDOUT, b"still open")
    assert client.receive() == b"\x01still open"


def test_ping_is_answered_with_its_payload(connect: Connect) -> None:
    connection, client = connect()
    before = connection.last_frame_at
    client.send(Ping(payload=b"beat"))
    assert client.receive() == Pong(payload=b"beat")
    assert connection.last_frame_at > before


def test_a_client_close_is_answered_and_ends_every_channel(connect: Connect) -> None:
    connection, client = connect()
    client.message(b"\x00buffered")
    client.send(CloseConnection(code=1000, reason="bye"))
    answer = client.receive()
    assert isinstance(answer, CloseConnection) and answer.code == 1000
    assert connection.wait_closed(5)
    assert connection.read(STDIN, timeout=5) == b"buffered"
    assert connection.read(STDIN, timeout=5) == b""
    assert connection.read(RESIZE, timeout=5) == b""
    with pytest.raises(ConnectionClosed):
        connection.write(STDOUT, b"too late")
    assert connection.error is None
    assert client.sock.recv(10) == b""  # and the server hung up


def test_a_client_close_with_an_error_code_is_reported(connect: Connect) -> None:
    connection, client = connect()
    client.send(CloseConnection(code=1011, reason="client broke"))
    assert connection.wait_closed(5)
    assert connection.error == "the peer closed with code 1011: client broke"


def test_close_sends_all_output_then_waits_for_the_clients_answer(connect: Connect) -> None:
    connection, client = connect(limits=Limits(write_chunk=64 << 10))
    data = b"x" * (4 << 20)  # far more than the socket buffers hold: close must not cut it short

    def server() -> None:
        connection.write(STDOUT, data)
        connection.close()

    closer = threading.Thread(target=server)
    closer.start()
    got = b""
    while isinstance(message := client.receive(), bytes):
        got += message[1:]
        time.sleep(0.001)  # a slow reader
    assert got == data
    assert isinstance(message, CloseConnection) and message.code == 1000
    assert not connection.wait_closed(0.05)  # still waiting for our answer
    client.send(message.response())
    closer.join(5)
    assert not closer.is_alive() and connection.wait_closed(0) and connection.error is None


def test_close_gives_up_on_a_client_that_never_answers(connect: Connect) -> None:
    connection, client = connect(limits=SMALL)
    started = time.monotonic()
    connection.close()
    assert 0.4 < time.monotonic() - started < 3
    assert connection.wait_closed(0)
    assert connection.error == "the peer did not answer the close frame within 0.5 s"
    assert isinstance(client.receive(), CloseConnection)


def test_a_lost_connection_ends_reads_and_fails_writes(connect: Connect) -> None:
    connection, client = connect()
    client.sock.close()
    assert connection.wait_closed(5)
    assert connection.read(STDIN, timeout=5) == b""
    with pytest.raises(ConnectionClosed):
        connection.write(STDOUT, b"nobody there")
    assert connection.error == "the connection was lost without a close frame"


BROKEN_FRAMING = [  # wsproto cannot parse on: the server closes and hangs up without an answer
    (b"\x81\x05hello", 1002, "invalid WebSocket framing"),  # unmasked: not a client's frame
    (b"GET / HTTP/1.1\r\n\r\n", 1002, "invalid WebSocket framing"),  # not WebSocket at all
    (b"\x81" + client_frame(b"\xff\xfe")[1:], 1007, "invalid WebSocket framing"),  # text, not UTF-8
]
BROKEN_MESSAGES = [  # sound frames that break the channel protocol: closed by a close handshake
    ("v4.base64.channel.k8s.io", client_frame("0not*base64"), 1007, "invalid base64 on channel 0"),
    ("v5.channel.k8s.io", client_frame(b"\xff\x00\x04"), 1007, "a close signal carries one channel byte"),
    ("v4.channel.k8s.io", client_frame(b"\x00" + b"x" * 2000), 1009, "a message exceeds 1024 bytes"),
]


@pytest.mark.parametrize(("raw", "code", "error"), BROKEN_FRAMING)
def test_broken_framing_closes_cleanly_with_an_error(connect: Connect, raw: bytes, code: int, error: str) -> None:
    connection, client = connect(limits=Limits(close_timeout=20))
    client.sock.sendall(raw)
    answer = client.receive()
    assert isinstance(answer, CloseConnection) and answer.code == code
    assert client.sock.recv(10) == b""  # the server shut its side at once, not after close_timeout
    client.sock.close()  # as a client does at the end of the stream
    assert connection.wait_closed(5)
    assert connection.error is not None and connection.error.startswith(error)
    assert connection.read(STDIN, timeout=5) == b""


@pytest.mark.parametrize(("subprotocol", "raw", "code", "error"), BROKEN_MESSAGES)
def test_malformed_messages_close_cleanly_with_an_error(
        connect: Connect, subprotocol: str, raw: bytes, code: int, error: str) -> None:
    connection, client = connect([subprotocol], limits=SMALL)
    client.sock.sendall(raw)
    answer = client.receive()
    assert isinstance(answer, CloseConnection) and answer.code == code
    assert not connection.wait_closed(0.05)  # waiting for the answer, as after any close
    client.send(answer.response())
    assert connection.wait_closed(5)
    assert connection.error is not None and connection.error.startswith(error)
    assert connection.read(STDIN, timeout=5) == b""


def test_a_client_that_floods_stdin_is_held_back_not_buffered(connect: Connect) -> None:
    connection, client = connect(limits=SMALL)
    chunk = bytes(range(256)) * 4  # 1 KiB + channel byte: one message of the largest allowed size
    frames = client_frame(b"\x00" + chunk[:1023]) * 4096  # 4 MiB of stdin, never read by the server yet
    sent = [0]

    def flood() -> None:
        view = memoryview(frames)
        client.sock.settimeout(10)
        while view:
            n = client.sock.send(view[:65536])
            sent[0] += n
            view = view[n:]

    flooder = threading.Thread(target=flood)
    flooder.start()
    time.sleep(0.5)
    stuck_at = sent[0]
    assert stuck_at < len(frames) / 2  # the client is blocked by TCP, not taken in by us
    stdin = connection._buffers[STDIN]  # what the server holds, not what TCP holds
    assert stdin.buffered <= SMALL.channel_buffer + SMALL.max_message
    got = b""
    while len(got) < 1023 * 4096:
        got += connection.read(STDIN, timeout=5)
    flooder.join(10)
    assert got == chunk[:1023] * 4096


def test_stop_reading_drops_a_channel_so_the_others_still_flow(connect: Connect) -> None:
    connection, client = connect(limits=SMALL)
    connection.stop_reading(STDIN)
    for _ in range(200):  # 200 KiB of stdin after the process is gone: dropped, not held
        client.message(b"\x00" + b"y" * 1000)
    client.message(b"\x04resize")
    assert connection.read(RESIZE, timeout=5) == b"resize"
    assert connection.read(STDIN, timeout=5) == b""


def test_a_client_that_reads_nothing_times_a_write_out(connect: Connect) -> None:
    connection, client = connect(limits=SMALL)
    started = time.monotonic()
    with pytest.raises(WriteTimeout):
        for _ in range(100_000):  # 100 MiB at most: far past what the socket buffers take
            connection.write(STDOUT, b"z" * 1024)
    assert time.monotonic() - started < 5
    assert connection.wait_closed(5)
    assert connection.error == "the peer read nothing for 0.5 s"
    with pytest.raises(ConnectionClosed):
        connection.write(STDOUT, b"after")


def test_a_write_waits_for_a_slow_client_and_then_completes(connect: Connect) -> None:
    connection, client = connect(limits=Limits(write_timeout=5))
    data = b"w" * (4 << 20)
    writer = threading.Thread(target=connection.write, args=(STDOUT, data))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive()  # blocked: nobody reads
    got = b""
    while len(got) < len(data):
        message = client.receive()
        assert isinstance(message, bytes)
        got += message[1:]
    writer.join(5)
    assert not writer.is_alive() and got == data


def test_an_idle_connection_is_closed(connect: Connect) -> None:
    connection, client = connect(limits=Limits(idle_timeout=0.3, close_timeout=2))
    started = time.monotonic()
    answer = client.receive()
    assert isinstance(answer, CloseConnection) and answer.code == 1001 and answer.reason == "idle timeout"
    assert 0.25 < time.monotonic() - started < 3
    client.send(answer.response())
    assert connection.wait_closed(5)
    assert connection.error == "no frame either way for 0.3 s"


def test_frames_keep_a_connection_from_idling(connect: Connect) -> None:
    connection, client = connect(limits=Limits(idle_timeout=0.4))
    for _ in range(8):
        time.sleep(0.1)
        client.send(Ping(payload=b""))
        assert isinstance(client.receive(), Pong)
    assert not connection.wait_closed(0)


def test_an_idle_timeout_also_ends_a_wait_for_a_full_channel(connect: Connect) -> None:
    limits = Limits(channel_buffer=10, idle_timeout=0.3, close_timeout=0.5)
    connection, client = connect(limits=limits)
    client.message(b"\x00" + b"a" * 20)  # fills stdin, which nobody reads
    client.message(b"\x00" + b"b" * 20)  # the reader waits with this one
    answer = client.receive()
    assert isinstance(answer, CloseConnection) and answer.code == 1001
    client.send(answer.response())
    assert connection.wait_closed(5)
    assert connection.read(STDIN, 100, timeout=5) == b"a" * 20
    assert connection.read(STDIN, timeout=5) == b""


def test_portforward_sends_each_port_first_on_both_its_channels(connect: Connect) -> None:
    ports = (8080, 443)
    connection, client = connect(["v4.channel.k8s.io"], kind=StreamKind.PORTFORWARD,
                                 readable=readable_channels(ports), target="/portforward/t?ports=8080,443")
    for channel, prefix in initial_messages(ports):
        connection.write(channel, prefix)
    assert [client.receive() for _ in range(4)] == [b"\x00\x90\x1f", b"\x01\x90\x1f", b"\x02\xbb\x01", b"\x03\xbb\x01"]
    client.message(b"\x02GET / HTTP/1.1\r\n\r\n")
    assert connection.read(2, timeout=5) == b"GET / HTTP/1.1\r\n\r\n"
    with pytest.raises(ValueError):
        connection.read(3)  # error channels are the server's to write


def test_portforward_in_base64(connect: Connect) -> None:
    connection, client = connect(["v4.base64.channel.k8s.io"], kind=StreamKind.PORTFORWARD, readable={0})
    connection.write(1, b"\x50\x00")
    assert client.receive() == "1UAA="
    client.message("0aGk=")
    assert connection.read(0, timeout=5) == b"hi"


def test_close_and_abort_are_idempotent(connect: Connect) -> None:
    connection, client = connect(limits=SMALL)
    connection.abort()
    connection.close()
    connection.close()
    connection.abort()
    assert connection.wait_closed(0)
    assert connection.error == "aborted"
    with pytest.raises(ConnectionClosed, match="aborted"):
        connection.write(STDOUT, b"")
    assert client.sock.recv(10) == b""  # no close frame after an abort: the stream just ends


def test_the_server_socket_is_released(connect: Connect) -> None:
    server_sock, client_sock = socket.socketpair()
    with client_sock:
        client = Client(client_sock)
        client.request(["v4.channel.k8s.io"])
        connection = websocket.accept(server_sock, *read_request(server_sock), StreamKind.REMOTECOMMAND, {0},
                                      SMALL)
        client.response()
        client.send(CloseConnection(code=1000))
        assert connection.wait_closed(5)
        connection.close()
        assert server_sock.fileno() == -1
