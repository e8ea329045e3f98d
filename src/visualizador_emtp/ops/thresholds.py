"""Every alert threshold of emtp-admin doctor and cleanup, in one place.

Values come from the maintenance manual of the previous system (daily and weekly checks).
"""

GB = 1024 ** 3
MB = 1024 ** 2

MIN_FREE_DISK_BYTES = 2 * GB          # WARN when the home's filesystem has less free space
APP_LOG_ERROR_WINDOW_HOURS = 24       # ERROR/CRITICAL lines counted in this window
USERS_DB_MAX_BYTES = 1 * MB           # WARN above (the old manual: "posible corrupción")
DATA_MAX_AGE_DAYS = 7                 # WARN when the last successful refresh is older
FAILED_LOGINS_WINDOW_DAYS = 7         # failed logins counted per user in this window
FAILED_LOGINS_MAX = 5                 # WARN when one user has more failures than this
BACKUP_MAX_AGE_HOURS = 24             # WARN when the newest backup is older
APP_LOG_MAX_BYTES = 50 * MB           # WARN above (time to check rotation)
HTTP_TIMEOUT_SECONDS = 5.0            # login page and /healthz
ROTATED_LOG_MAX_DAYS = 90             # cleanup deletes rotated logs older than this
