#!/usr/bin/env python3
"""A TCP proxy that adds a fixed delay to every byte, each way: a stand-in for `tc netem delay`
on kernels without netem (the multi-host test uses it between a host and the coordinator).

    python3 tools/delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [--off]

Listens on 127.0.0.1:LISTEN_PORT and forwards to TARGET_HOST:TARGET_PORT. Data read at time t
is written at t + DELAY_MS, in order; throughput is not limited. With --off it starts without
delay; SIGUSR1 turns the delay on, SIGUSR2 off. Prints "READY" once listening.
"""
import asyncio
import signal
import sys


async def main():
    listen_port, target_host, target_port, delay_ms = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    state = {"delay": 0.0 if "--off" in sys.argv else delay_ms / 1000}
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: state.update(delay=delay_ms / 1000))
    loop.add_signal_handler(signal.SIGUSR2, lambda: state.update(delay=0.0))

    async def pipe(reader, writer):
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                queue.put_nowait((loop.time() + state["delay"], data))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((0, None))
        try:
            await sender
        except (ConnectionError, OSError):
            pass

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
