"""Every default value of the framework, in one place."""

from __future__ import annotations

# Address the broker binds its two sockets to when `zmq: bind:` is absent.
BIND = "127.0.0.1"

# Largest message, in bytes, the manager accepts (`zmq: max message size`); a worker
# refuses to send a larger one, and the manager answers one with `invalid message`.
MAX_MESSAGE_SIZE = 1024 * 1024

# The broker lets messages up to this many times `zmq: max message size` through,
# so the manager can answer them; ZeroMQ drops larger ones and closes the connection.
OVERSIZE_FACTOR = 4

# Largest YAML (NEMO_Nowcast-style) message, in bytes: YAML costs far more to read
# than JSON, so one message may not block the manager for long.
MAX_YAML_MESSAGE_SIZE = 256 * 1024

# Deepest nesting of mappings and lists a message may hold (the message itself is
# level 1); the manager refuses deeper ones, which its files could not hold safely.
MESSAGE_MAX_DEPTH = 100

# Seconds a worker waits for the manager's reply before it re-sends the message.
REPLY_TIMEOUT = 5.0

# Seconds a worker keeps re-sending before it gives up and exits non-zero.
GIVE_UP_AFTER = 300.0

# Milliseconds a long-running process waits in one poll before it checks its flags.
POLL_MS = 200

# Seconds between the manager's checks of the workers it launched while messages
# keep it busy (when idle, it checks after each poll).
SUPERVISE_EVERY = 0.05

# Most messages the manager applies in one batch (one checklist write, then replies).
BATCH_MAX = 500

# Most workers the manager has starting at once: launched less than STARTING_SECONDS
# ago and still running. A fan-out's other workers stay pending, on disk, until a
# quarter of these have exited (or run that long), so thousands of workers starting
# do not crowd the manager (and memory) off a small machine.
LAUNCH_WINDOW = 64
STARTING_SECONDS = 1.0

# Group commits: after a commit that answered at least GROUP_COMMIT_MIN messages
# (a burst), the manager waits before it starts the next, for the workers just
# answered to send again, so that one write (and its flushes to disk) serves more
# messages: up to GROUP_COMMIT_WAIT seconds, and as long again after each message
# that comes meanwhile, GROUP_COMMIT_MAX_WAIT at most; a lone message never waits.
# When the workers answered did not all send again in time (workers that send one
# message and exit), the next GROUP_COMMIT_SKIP commits start without waiting.
GROUP_COMMIT_MIN = 4
GROUP_COMMIT_WAIT = 0.002
GROUP_COMMIT_MAX_WAIT = 0.010
GROUP_COMMIT_SKIP = 8

# What may wait for the next commit rather than make one of its own (launches,
# which the launch journal holds meanwhile; the exits of workers that reported;
# the history's rows of its own) is written with the next commit, or at the
# latest LATER_COMMIT_DELAY seconds after the last one started, so a chain of
# workers does not pay a commit for each launch and each exit.
LATER_COMMIT_DELAY = 0.5

# Seconds the manager waits before writing again after a write to disk failed
# (disk full, I/O error); the replies wait too, and workers re-send meanwhile.
COMMIT_RETRY_DELAY = 1.0

# Seconds the manager remembers an applied message's id (with its reply) beyond
# the longest a worker re-sends (`zmq: give up after` plus a `reply timeout`), so a
# worker that re-sends after a lost reply gets the first answer back.
REMEMBER_MARGIN = 60.0

# Most message ids the manager remembers (in memory an id takes its length and about
# 12 bytes more: nowcast.remembered); beyond this the oldest are forgotten early,
# with a warning.
REMEMBERED_IDS_MAX = 500_000

# The environment variable through which the manager gives each worker it launches
# that launch's token; the worker puts it in its message ids.
LAUNCH_TOKEN_ENV = "NOWCAST_LAUNCH"

# Seconds a signalled long-running process may take to close its sockets.
LINGER_MS = 1000

# Seconds between SIGTERM and SIGKILL for a worker past its registry `timeout`.
TIMEOUT_GRACE = 10.0

# How many recent messages the manager keeps for `python -m nowcast.status`.
RECENT_MESSAGES = 20

# Seconds `python -m nowcast.status` waits for the manager's answer.
STATUS_TIMEOUT = 5.0

# Log records a process holds for the log aggregator while it is unreachable.
LOG_BUFFER = 10000

# Whether the manager starts local workers through a warm fork server (`run: warm start`).
WARM_START = True

# Seconds the manager waits for a running fork server to start a worker before
# starting it cold (and a fresh fork server); generous, for a loaded machine: a
# stopped one (SIGSTOP) is noticed much sooner, after FORK_SERVER_PATIENCE.
FORK_SERVER_TIMEOUT = 5.0

# Seconds without an answer after which the manager looks whether the fork server
# is stopped (SIGSTOP, a debugger); if it is, the worker is started cold at once.
FORK_SERVER_PATIENCE = 0.005

# Seconds after a fork server died (or could not start) before the manager starts
# another; doubled at each failure in a row, up to FORK_SERVER_RESTART_MAX.
FORK_SERVER_RESTART_DELAY = 10.0

# Longest wait, in seconds, between attempts to start a fork server that keeps failing.
FORK_SERVER_RESTART_MAX = 600.0

# Seconds between the broker's checks that the manager can take messages (if not, they are dropped).
RELAY_CHECK = 0.5

# Seconds the broker waits for a port it just closed to be free again, when a reload re-binds it.
REBIND_WAIT = 2.0

# Days of runs and messages the history database keeps (`history: keep days`).
HISTORY_KEEP_DAYS = 400

# Seconds a connection to the history database waits for another's lock.
HISTORY_BUSY_TIMEOUT = 5.0

# Days of runs `nowcast history` takes the median and 90th percentile over.
HISTORY_TREND_DAYS = 30

# Characters of a message's payload the history keeps (as JSON, cut there).
HISTORY_PAYLOAD_CHARS = 500

# Seconds between the history's prunings of old rows (the first a minute after start).
HISTORY_PRUNE_EVERY = 3600.0

# Commits of the manager between two checkpoints of the history's log (its pages
# moved into the database file), each made after a commit's replies are sent.
HISTORY_CHECKPOINT_COMMITS = 50

# Seconds without a commit after which the manager checkpoints the history's log.
HISTORY_CHECKPOINT_IDLE = 1.0

# Pages (4 KiB each) of the history's log past which a commit checkpoints it
# before its replies go (SQLite's own checkpoint): a bound, reached only when
# commits are larger than checkpoints every HISTORY_CHECKPOINT_COMMITS can keep up with.
HISTORY_LOG_MAX_PAGES = 10000

# Seconds the manager's last checkpoint of the history's log, at its stop, waits
# for a reader in the middle of a read (it then leaves the log as it is).
HISTORY_LAST_CHECKPOINT_WAIT = 0.2

# Bytes of zeros the manager's history log is extended to at start, so that a
# commit overwrites blocks already on disk instead of growing the file (whose
# flush then writes the file's new size too): about what 50 commits of 20 messages write.
HISTORY_LOG_PREALLOCATE = 6 * 1024 * 1024

# Address the web dashboard binds to when `web: bind:` is absent (loopback only).
WEB_BIND = "127.0.0.1"

# Port of the web dashboard when `web: port:` is absent.
WEB_PORT = 5780

# Seconds between the dashboard's checks of the history database for new rows.
WEB_POLL = 0.2

# Seconds between the dashboard's status requests to the manager.
WEB_STATUS_EVERY = 1.0

# Days of runs the dashboard's graph draws its edges from.
WEB_GRAPH_DAYS = 30

# Days of runs the dashboard's worker page shows.
WEB_WORKER_DAYS = 90

# Seconds of the window in which each event action sends at most EVENT_BURST
# notifications; more events within it are held and sent as one digest.
EVENT_DIGEST_WINDOW = 60.0

# Notifications an event action sends in one window before it holds the rest for a digest.
EVENT_BURST = 3

# Events waiting for their actions; beyond this, events are dropped (and that is recorded).
EVENT_QUEUE = 1000

# Seconds the manager, when it stops, lets queued event actions run.
EVENT_CLOSE_WAIT = 5.0

# Seconds an event's command may run before it is killed.
EVENT_COMMAND_TIMEOUT = 30.0

# Seconds a webhook or mail server may take to answer.
EVENT_NETWORK_TIMEOUT = 10.0

# Tries of a webhook post (with 1 s, 2 s, 4 s... between them).
WEBHOOK_TRIES = 3

# Days of runs `nowcast history` lists unless told (--days).
HISTORY_REPORT_DAYS = 7

# Seconds between the manager's polls of a batch system (`poll interval` of a batch host).
BATCH_POLL_INTERVAL = 30.0

# Seconds before the first poll after a job is submitted or changes state; doubled
# at each poll up to the poll interval.
BATCH_FIRST_POLL = 0.5

# Seconds a batch command (sbatch, squeue, scancel, over ssh too) may take before it is killed.
BATCH_COMMAND_TIMEOUT = 60.0

# Where job scripts and their output go on a login node reached over ssh (relative
# to the login directory), when the host sets no `jobs directory`.
BATCH_REMOTE_JOBS_DIRECTORY = "nowcast-jobs"

# Lines of a batch job's output that go into the crash message and log line.
BATCH_OUTPUT_LINES = 10

# Tries of a command run through ssh on a login node that cancels a batch job or
# reads the end of its output, when ssh itself fails (exit status 255: the
# connection refused or lost) rather than the command.
BATCH_SSH_TRIES = 3
