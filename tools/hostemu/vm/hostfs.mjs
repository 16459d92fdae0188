// HOSTFS: an Emscripten file-system backend that passes every operation straight through to a
// folder on the host with Node's synchronous `fs` calls.
//
// Why not MEMFS plus a copy back at exit: a board's flash keeps what was written even when the
// power goes (or the Node process is killed), and a test wants to see a file the moment device code
// closes it. Writing through makes the host folder the one source of truth, like flash.
//
// This build of MicroPython only ships MEMFS, so this is a small re-implementation of Emscripten's
// NODEFS (src/lib/libnodefs.js) against the `FS` object `loadMicroPython()` returns: same node and
// stream operation signatures, host errors mapped to the WASI errno numbers the C side expects.

import fs from "node:fs";
import path from "node:path";

// WASI errno values (Emscripten's ERRNO_CODES) for the Node error codes a file system produces.
const ERRNO = {
  EPERM: 63, ENOENT: 44, EIO: 29, EBADF: 8, EAGAIN: 6, ENOMEM: 48, EACCES: 2, EBUSY: 10,
  EEXIST: 20, EXDEV: 75, ENODEV: 43, ENOTDIR: 54, EISDIR: 31, EINVAL: 28, ENFILE: 41, EMFILE: 33,
  EFBIG: 22, ENOSPC: 51, ESPIPE: 70, EROFS: 69, EMLINK: 34, ENAMETOOLONG: 37, ENOTEMPTY: 55,
  ELOOP: 32, ENOSYS: 52, ENOTSUP: 138,
};

// Emscripten (musl) open flags -> Node's numeric flags.
const O = fs.constants;
const FLAG_MAP = [
  [0o1, O.O_WRONLY], [0o2, O.O_RDWR], [0o100, O.O_CREAT], [0o200, O.O_EXCL],
  [0o1000, O.O_TRUNC], [0o2000, O.O_APPEND],
];
// Flags musl adds that mean nothing to a plain file opened by Node.
const IGNORED_FLAGS = 0o400 /* NOCTTY */ | 0o4000 /* NONBLOCK */ | 0o100000 /* LARGEFILE */
  | 0o2000000 /* CLOEXEC */ | 0o200000 /* DIRECTORY */ | 0o10000000 /* PATH */ | 0o4010000 /* SYNC */;

export function createHostFS(FS, options = {}) {
  const readOnly = !!options.readOnly;

  function errnoError(e) {
    if (e instanceof FS.ErrnoError) return e;
    if (!e || !e.code) throw e; // a bug, not an I/O error: let it surface
    return new FS.ErrnoError(ERRNO[e.code] ?? ERRNO.EIO);
  }

  function attempt(fn) {
    try {
      return fn();
    } catch (e) {
      throw errnoError(e);
    }
  }

  function denyWrite() {
    if (readOnly) throw new FS.ErrnoError(ERRNO.EROFS);
  }

  function realPath(node) {
    const parts = [];
    while (node.parent !== node) {
      parts.push(node.name);
      node = node.parent;
    }
    parts.push(node.mount.opts.root);
    parts.reverse();
    return path.join(...parts);
  }

  function flagsForNode(flags) {
    flags &= ~IGNORED_FLAGS;
    let out = 0;
    for (const [musl, node] of FLAG_MAP) {
      if (flags & musl) {
        out |= node;
        flags &= ~musl;
      }
    }
    if (flags) throw new FS.ErrnoError(ERRNO.EINVAL);
    return out;
  }

  function createNode(parent, name, mode, dev) {
    if (!FS.isDir(mode) && !FS.isFile(mode) && !FS.isLink(mode)) {
      throw new FS.ErrnoError(ERRNO.EINVAL);
    }
    const node = FS.createNode(parent, name, mode, dev);
    node.node_ops = HOSTFS.node_ops;
    node.stream_ops = HOSTFS.stream_ops;
    return node;
  }

  function getMode(p) {
    return attempt(() => fs.lstatSync(p).mode);
  }

  const HOSTFS = {
    mount(mount) {
      return createNode(null, "/", getMode(mount.opts.root), 0);
    },
    node_ops: {
      getattr(node) {
        const st = attempt(() => fs.lstatSync(realPath(node)));
        return {
          dev: st.dev, ino: node.id, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid,
          rdev: st.rdev, size: st.size, atime: st.atime, mtime: st.mtime, ctime: st.ctime,
          blksize: st.blksize, blocks: st.blocks,
        };
      },
      setattr(node, attr) {
        denyWrite();
        const p = realPath(node);
        attempt(() => {
          if (attr.mode !== undefined) {
            fs.chmodSync(p, attr.mode);
            node.mode = attr.mode;
          }
          if (typeof (attr.atime ?? attr.mtime) === "number") {
            const st = fs.lstatSync(p);
            fs.utimesSync(p, new Date(attr.atime ?? st.atime), new Date(attr.mtime ?? st.mtime));
          }
          if (attr.size !== undefined) fs.truncateSync(p, attr.size);
        });
      },
      lookup(parent, name) {
        return createNode(parent, name, getMode(path.join(realPath(parent), name)));
      },
      mknod(parent, name, mode, dev) {
        denyWrite();
        const node = createNode(parent, name, mode, dev);
        const p = realPath(node);
        attempt(() => {
          if (FS.isDir(node.mode)) fs.mkdirSync(p, node.mode);
          else fs.writeFileSync(p, "", { mode: node.mode });
        });
        return node;
      },
      rename(oldNode, newDir, newName) {
        denyWrite();
        const oldPath = realPath(oldNode);
        const newPath = path.join(realPath(newDir), newName);
        attempt(() => fs.renameSync(oldPath, newPath));
        oldNode.name = newName;
      },
      unlink(parent, name) {
        denyWrite();
        attempt(() => fs.unlinkSync(path.join(realPath(parent), name)));
      },
      rmdir(parent, name) {
        denyWrite();
        attempt(() => fs.rmdirSync(path.join(realPath(parent), name)));
      },
      readdir(node) {
        return attempt(() => fs.readdirSync(realPath(node)));
      },
      symlink() {
        throw new FS.ErrnoError(ERRNO.EPERM); // littlefs/FAT on a board have no links
      },
      readlink(node) {
        return attempt(() => fs.readlinkSync(realPath(node)));
      },
    },
    stream_ops: {
      open(stream) {
        const p = realPath(stream.node);
        attempt(() => {
          if (FS.isFile(stream.node.mode)) {
            const flags = flagsForNode(stream.flags);
            if (flags & (O.O_WRONLY | O.O_RDWR | O.O_CREAT | O.O_TRUNC | O.O_APPEND)) denyWrite();
            stream.shared.refcount = 1;
            stream.nfd = fs.openSync(p, flags);
          }
        });
      },
      close(stream) {
        attempt(() => {
          if (FS.isFile(stream.node.mode) && stream.nfd !== undefined && --stream.shared.refcount === 0) {
            fs.closeSync(stream.nfd);
          }
        });
      },
      dup(stream) {
        stream.shared.refcount++;
      },
      read(stream, buffer, offset, length, position) {
        return attempt(() => fs.readSync(stream.nfd, buffer, offset, length, position));
      },
      write(stream, buffer, offset, length, position) {
        return attempt(() => fs.writeSync(stream.nfd, buffer, offset, length, position));
      },
      llseek(stream, offset, whence) {
        let position = offset;
        if (whence === 1) position += stream.position;
        else if (whence === 2 && FS.isFile(stream.node.mode)) {
          position += attempt(() => fs.fstatSync(stream.nfd).size);
        }
        if (position < 0) throw new FS.ErrnoError(ERRNO.EINVAL);
        return position;
      },
    },
  };
  return HOSTFS;
}
