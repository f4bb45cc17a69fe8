"""The virtual ESP32's `errno` (also `uerrno`): the numbers of the ESP32 port, not of the build
that runs the virtual ESP32.

    import errno
    errno.ETIMEDOUT              # 116 on an ESP32 (110 on Linux and CPython)
    errno.errorcode[116]         # 'ETIMEDOUT'

MicroPython's ESP32 port takes its errno values from the C library (py/mperrno.h maps MP_Exxx to
<errno.h> when MICROPY_USE_INTERNAL_ERRNO is off, as on the ESP32), which is ESP-IDF's newlib
(newlib/libc/include/sys/errno.h); lwIP on ESP-IDF uses the same values. Hence on a board
`OSError: [Errno 116] ETIMEDOUT`, `[Errno 113] ECONNABORTED`, `[Errno 118] EHOSTUNREACH`,
`[Errno 119] EINPROGRESS`. The names below are the ones py/moderrno.c exports
(MICROPY_PY_ERRNO_LIST), plus those the virtual ESP32's file system and sockets raise.

Installed as sys.modules["errno"], it serves every lookup at run time: `getattr(errno, name)`,
`from errno import ...`, and code compiled by mpy-cross (the bridge's .mpy). Source compiled on the
virtual ESP32 itself that spells `errno.ETIMEDOUT` gets the WebAssembly build's number instead:
MicroPython folds attributes of its built-in errno into constants at compile time
(MICROPY_COMP_MODULE_CONST, py/compile.c), a difference from a board that cannot be emulated
without rebuilding the port; compare with getattr(errno, "ETIMEDOUT") in such code.
"""

EPERM = 1
ENOENT = 2
EINTR = 4
EIO = 5
EBADF = 9
EAGAIN = 11
EWOULDBLOCK = 11
ENOMEM = 12
EACCES = 13
EEXIST = 17
EXDEV = 18
ENODEV = 19
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENOSPC = 28
EROFS = 30
EPIPE = 32
# The file system is littlefs, whose codes are Linux's (lfs.h: LFS_ERR_NOTEMPTY = -39,
# LFS_ERR_NAMETOOLONG = -36), raised negated by extmod/vfs_lfsx.c; newlib's 90/91 never appear.
ENOTEMPTY = 39
ENAMETOOLONG = 36
EOPNOTSUPP = 95
ECONNRESET = 104
ENOBUFS = 105
ECONNREFUSED = 111
EADDRINUSE = 112
ECONNABORTED = 113
ENETUNREACH = 114
ETIMEDOUT = 116         # Linux: 110
EHOSTUNREACH = 118      # Linux: 113
EINPROGRESS = 119       # Linux: 115
EALREADY = 120          # Linux: 114
EISCONN = 127
ENOTCONN = 128          # Linux: 107

errorcode = {v: k for k, v in globals().items() if k[:1] == "E" and k != "EWOULDBLOCK" and type(v) is int}
