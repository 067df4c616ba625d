#include "support/fault_vfs.hpp"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <random>
#include <set>
#include <stdexcept>

namespace gapless::test {

namespace {

namespace fs = std::filesystem;

// One open file: SQLite allocates szOsFile bytes and hands them to xOpen; the
// wrapped VFS's own file lives right after this header.
struct FaultFile {
  sqlite3_file base;  // first: SQLite sees a FaultFile as a sqlite3_file
  FaultVfs* owner;
  sqlite3_file* real;
  bool tracked;  // the journal or its -wal: counted, faulted, modelled
  std::string path;
};

constexpr size_t kHeaderSize = (sizeof(FaultFile) + 15) / 16 * 16;

FaultVfs* owner_of(sqlite3_vfs* vfs) { return static_cast<FaultVfs*>(vfs->pAppData); }
FaultFile* as_fault(sqlite3_file* file) { return reinterpret_cast<FaultFile*>(file); }
sqlite3_file* real_of(sqlite3_file* file) { return as_fault(file)->real; }

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---- sqlite3_io_methods: the wrapped file's, with the faults in between ----

int file_close(sqlite3_file* file) {
  FaultFile* f = as_fault(file);
  const int rc = f->real->pMethods != nullptr ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  f->~FaultFile();
  return rc;
}

int file_read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
  return real_of(file)->pMethods->xRead(real_of(file), buffer, amount, offset);
}

int file_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  FaultFile* f = as_fault(file);
  if (f->tracked)
    if (const int rc = f->owner->before_write(f->path, offset, data, amount); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xWrite(f->real, data, amount, offset);
}

int file_truncate(sqlite3_file* file, sqlite3_int64 size) {
  FaultFile* f = as_fault(file);
  if (f->tracked && f->owner->power_is_off()) return SQLITE_IOERR_TRUNCATE;
  return f->real->pMethods->xTruncate(f->real, size);
}

// What the file holds now, read through the wrapped VFS: what an fsync made durable.
std::string contents(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) throw std::runtime_error("fault_vfs: xFileSize failed");
  std::string bytes(static_cast<size_t>(size), '\0');
  if (size > 0 && real->pMethods->xRead(real, bytes.data(), static_cast<int>(size), 0) != SQLITE_OK)
    throw std::runtime_error("fault_vfs: reading a synced file back failed");
  return bytes;
}

int file_sync(sqlite3_file* file, int flags) {
  FaultFile* f = as_fault(file);
  if (!f->tracked) return f->real->pMethods->xSync(f->real, flags);
  if (const int rc = f->owner->before_sync(); rc != SQLITE_OK) return rc;
  // The model keeps what is durable itself: the disk's own fsync would only
  // cost time (a few seconds per hundred rounds).
  f->owner->note_synced(f->path, contents(f->real));
  return SQLITE_OK;
}

int file_size(sqlite3_file* file, sqlite3_int64* size) {
  return real_of(file)->pMethods->xFileSize(real_of(file), size);
}
int file_lock(sqlite3_file* file, int lock) { return real_of(file)->pMethods->xLock(real_of(file), lock); }
int file_unlock(sqlite3_file* file, int lock) { return real_of(file)->pMethods->xUnlock(real_of(file), lock); }
int file_check_reserved(sqlite3_file* file, int* out) {
  return real_of(file)->pMethods->xCheckReservedLock(real_of(file), out);
}
int file_control(sqlite3_file* file, int op, void* arg) {
  return real_of(file)->pMethods->xFileControl(real_of(file), op, arg);
}
int file_sector_size(sqlite3_file* file) { return real_of(file)->pMethods->xSectorSize(real_of(file)); }
int file_device(sqlite3_file* file) { return real_of(file)->pMethods->xDeviceCharacteristics(real_of(file)); }
int file_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return real_of(file)->pMethods->xShmMap(real_of(file), region, size, extend, out);
}
int file_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  return real_of(file)->pMethods->xShmLock(real_of(file), offset, n, flags);
}
void file_shm_barrier(sqlite3_file* file) { real_of(file)->pMethods->xShmBarrier(real_of(file)); }
int file_shm_unmap(sqlite3_file* file, int delete_flag) {
  return real_of(file)->pMethods->xShmUnmap(real_of(file), delete_flag);
}
int file_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return real_of(file)->pMethods->xFetch(real_of(file), offset, amount, out);
}
int file_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return real_of(file)->pMethods->xUnfetch(real_of(file), offset, page);
}

const sqlite3_io_methods kFileMethods = {
    3,           file_close,         file_read,   file_write,        file_truncate,    file_sync,
    file_size,   file_lock,          file_unlock, file_check_reserved, file_control,   file_sector_size,
    file_device, file_shm_map,       file_shm_lock, file_shm_barrier, file_shm_unmap, file_fetch,
    file_unfetch};

// ---- sqlite3_vfs: the wrapped VFS's, opening FaultFiles -------------------

int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultVfs* owner = owner_of(vfs);
  sqlite3_vfs* wrapped = owner->wrapped();
  FaultFile* f = new (file) FaultFile{};
  f->base.pMethods = nullptr;
  f->owner = owner;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kHeaderSize);
  f->tracked = name != nullptr && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) != 0;
  if (f->tracked) {
    f->path = name;
    if (!owner->knows(f->path)) owner->note_opened(f->path);  // before the open may create it
  }
  std::memset(f->real, 0, static_cast<size_t>(wrapped->szOsFile));
  const int rc = wrapped->xOpen(wrapped, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    f->~FaultFile();
    std::memset(file, 0, sizeof(sqlite3_file));  // pMethods NULL: SQLite will not call xClose
    return rc;
  }
  f->base.pMethods = &kFileMethods;
  return SQLITE_OK;
}

int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  FaultVfs* owner = owner_of(vfs);
  if (owner->power_is_off()) return SQLITE_IOERR_DELETE;
  const int rc = owner->wrapped()->xDelete(owner->wrapped(), name, sync_dir);
  if (rc == SQLITE_OK && owner->knows(name)) owner->note_deleted(name);
  return rc;
}

sqlite3_vfs* wrapped_of(sqlite3_vfs* vfs) { return owner_of(vfs)->wrapped(); }

int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return wrapped_of(vfs)->xAccess(wrapped_of(vfs), name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return wrapped_of(vfs)->xFullPathname(wrapped_of(vfs), name, size, out);
}
void* vfs_dl_open(sqlite3_vfs* vfs, const char* name) { return wrapped_of(vfs)->xDlOpen(wrapped_of(vfs), name); }
void vfs_dl_error(sqlite3_vfs* vfs, int size, char* out) { wrapped_of(vfs)->xDlError(wrapped_of(vfs), size, out); }
void (*vfs_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return wrapped_of(vfs)->xDlSym(wrapped_of(vfs), handle, symbol);
}
void vfs_dl_close(sqlite3_vfs* vfs, void* handle) { wrapped_of(vfs)->xDlClose(wrapped_of(vfs), handle); }
int vfs_randomness(sqlite3_vfs* vfs, int size, char* out) {
  return wrapped_of(vfs)->xRandomness(wrapped_of(vfs), size, out);
}
int vfs_sleep(sqlite3_vfs* vfs, int microseconds) { return wrapped_of(vfs)->xSleep(wrapped_of(vfs), microseconds); }
int vfs_current_time(sqlite3_vfs* vfs, double* out) { return wrapped_of(vfs)->xCurrentTime(wrapped_of(vfs), out); }
int vfs_last_error(sqlite3_vfs* vfs, int size, char* out) {
  return wrapped_of(vfs)->xGetLastError(wrapped_of(vfs), size, out);
}
int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return wrapped_of(vfs)->xCurrentTimeInt64(wrapped_of(vfs), out);
}

}  // namespace

FaultVfs::FaultVfs() : wrapped_(sqlite3_vfs_find(nullptr)), vfs_(std::make_unique<sqlite3_vfs>()) {
  if (wrapped_ == nullptr) throw std::runtime_error("fault_vfs: SQLite has no default VFS");
  sqlite3_vfs& v = *vfs_;
  v = sqlite3_vfs{};
  v.iVersion = 2;  // up to xCurrentTimeInt64; the system-call overrides (version 3) are not offered
  v.szOsFile = static_cast<int>(kHeaderSize) + wrapped_->szOsFile;
  v.mxPathname = wrapped_->mxPathname;
  v.zName = "gapless-fault";
  v.pAppData = this;
  v.xOpen = vfs_open;
  v.xDelete = vfs_delete;
  v.xAccess = vfs_access;
  v.xFullPathname = vfs_full_pathname;
  v.xDlOpen = vfs_dl_open;
  v.xDlError = vfs_dl_error;
  v.xDlSym = vfs_dl_sym;
  v.xDlClose = vfs_dl_close;
  v.xRandomness = vfs_randomness;
  v.xSleep = vfs_sleep;
  v.xCurrentTime = vfs_current_time;
  v.xGetLastError = vfs_last_error;
  v.xCurrentTimeInt64 = vfs_current_time_int64;
  if (sqlite3_vfs_register(vfs_.get(), 1) != SQLITE_OK) throw std::runtime_error("fault_vfs: cannot register");
}

FaultVfs::~FaultVfs() {
  sqlite3_vfs_unregister(vfs_.get());
  sqlite3_vfs_register(wrapped_, 1);
}

void FaultVfs::arm(const Plan& plan) {
  plan_ = plan;
  armed_ = true;
  fired_ = false;
  writes_ = 0;
  syncs_ = 0;
}

void FaultVfs::disarm() { armed_ = false; }

void FaultVfs::note_opened(const std::string& path) {
  std::error_code error;
  Durable durable;
  durable.exists = fs::exists(path, error);
  if (durable.exists) durable.bytes = read_whole(path);
  files_[path] = std::move(durable);
}

void FaultVfs::note_synced(const std::string& path, std::string bytes) {
  files_[path] = Durable{true, std::move(bytes), {}};
}

void FaultVfs::note_deleted(const std::string& path) { files_[path] = Durable{}; }

int FaultVfs::before_write(const std::string& path, int64_t offset, const void* data, int amount) {
  if (power_off_) return SQLITE_IOERR_WRITE;
  if (!armed_) return SQLITE_OK;
  ++writes_;
  const auto record = [&] {
    files_[path].unsynced.push_back(Write{offset, std::string(static_cast<const char*>(data), amount)});
  };
  if (plan_.n != writes_) {
    record();
    return SQLITE_OK;
  }
  if (plan_.fault == Fault::fail_write) {
    fired_ = true;
    return SQLITE_IOERR_WRITE;
  }
  if (plan_.fault == Fault::power_cut) {
    fired_ = true;
    power_off_ = true;  // this write reaches the page cache; nothing after it happens
    cut_path_ = path;
    record();
  }
  return SQLITE_OK;
}

int FaultVfs::before_sync() {
  if (power_off_) return SQLITE_IOERR_FSYNC;
  if (!armed_) return SQLITE_OK;
  ++syncs_;
  if ((plan_.fault == Fault::fail_sync || plan_.fault == Fault::fail_sync_then_cut) && plan_.n == syncs_) {
    fired_ = true;
    if (plan_.fault == Fault::fail_sync_then_cut) {
      power_off_ = true;
      keep_written_ = true;
    }
    return SQLITE_IOERR_FSYNC;
  }
  return SQLITE_OK;
}

namespace {

void land(std::string& image, int64_t offset, const std::string& bytes) {
  const size_t end = static_cast<size_t>(offset) + bytes.size();
  if (image.size() < end) image.resize(end, '\0');
  image.replace(static_cast<size_t>(offset), bytes.size(), bytes);
}

}  // namespace

void FaultVfs::restore_durable_state() {
  std::mt19937 random(plan_.landing);
  constexpr size_t kSector = 512;
  for (auto& [path, durable] : files_) {
    std::error_code ignored;
    fs::remove(path + "-shm", ignored);  // shared memory: rebuilt from the -wal by the next open
    if (keep_written_) continue;
    if (plan_.torn && path == cut_path_ && !durable.unsynced.empty()) {
      const Write& cut = durable.unsynced.back();  // the cut's write, its first half
      land(durable.bytes, cut.offset, cut.bytes.substr(0, cut.bytes.size() / 2));
      durable.exists = true;
    } else if (plan_.landing != 0 && !durable.unsynced.empty()) {
      // The page cache holds each sector's latest bytes; the disk wrote back
      // some of those sectors, not others.
      std::string latest = durable.bytes;
      std::set<size_t> dirty;
      for (const Write& write : durable.unsynced) {
        land(latest, write.offset, write.bytes);
        for (size_t at = static_cast<size_t>(write.offset) / kSector * kSector;
             at < static_cast<size_t>(write.offset) + write.bytes.size(); at += kSector)
          dirty.insert(at);
      }
      for (const size_t at : dirty)
        if (random() % 2 == 1) land(durable.bytes, static_cast<int64_t>(at), latest.substr(at, kSector));
      durable.exists = true;
    }
    if (durable.exists) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(durable.bytes.data(), static_cast<std::streamsize>(durable.bytes.size()));
      if (!out) throw std::runtime_error("fault_vfs: cannot restore " + path);
    } else {
      fs::remove(path, ignored);
    }
  }
  power_off_ = false;
  keep_written_ = false;
  cut_path_.clear();
  forget();
}

void FaultVfs::forget() { files_.clear(); }

}  // namespace gapless::test
