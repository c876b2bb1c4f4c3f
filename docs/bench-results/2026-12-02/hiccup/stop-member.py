"""Stops a process (SIGSTOP) for STOP_MS every EVERY_MS for SECS seconds: a member that is
descheduled now and then. Usage: stop-member.py PID STOP_MS EVERY_MS SECS"""
import os
import signal
import sys
import time

pid = int(sys.argv[1])
stop, every, secs = (float(a) for a in sys.argv[2:5])
end = time.time() + secs
while time.time() < end:
    os.kill(pid, signal.SIGSTOP)
    time.sleep(stop / 1000)
    os.kill(pid, signal.SIGCONT)
    time.sleep(every / 1000)
