// corral-fetch: the initramfs' BitTorrent client, on libtorrent-rasterbar 2.0.
//
//   corral-fetch info-hash FILE.torrent
//   corral-fetch get --torrent F --dir D --done-file P --seed-seconds S
//                    [--upload-limit BYTES/s] [--listen-port N] [--stream FIFO]
//                    [--set NAME=VALUE ...]
//
// Why not aria2c: in the boot-storm benchmark (bench/RESULTS.md) libtorrent nodes
// finished sooner and took fewer bytes from the server, and aria2c's TLS stack
// (gnutls and what it maps) weighed ~2.3 MB of the initramfs for nothing: a node
// speaks plain HTTP to the tracker and BitTorrent to its peers.
//
// `get` downloads through the torrent's tracker (pieces verified by libtorrent),
// writes the file's path to the done file when every piece is in (the init
// watches for it), then seeds for S seconds or until SIGTERM, and announces
// `stopped` on the way out. Settings are for a private provisioning LAN: no
// DHT/LSD/UPnP/NAT-PMP, every interested peer unchoked, rarest first, the
// tracker's interval honoured, no pre-allocation. With --stream, the file's bytes
// also go to FIFO in order as the pieces are verified (class Stream), so that a
// reader can unpack while the rest downloads. Errors: one line on stderr and
// a non-zero exit (1 failure, 2 usage, 3 stopped before the download completed).
// Built when an initramfs is packed: corral/images/fetchclient.py.

#include <libtorrent/alert_types.hpp>
#include <libtorrent/announce_entry.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lt = libtorrent;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kStopped = 3;
constexpr auto kProgressEvery = std::chrono::seconds(10);
// Peers at once. More is not faster: every connection is a TCP flow into the node's one
// link, and at 60 a 64-node storm lost 6,461 flows to retransmission timeouts and took
// 2.24x the link's limit; at 16, 1,655-1,965 timeouts and 1.74-1.84x; at 8, too few
// sources (2.25x). bench/RESULTS.md, round 4.
constexpr int kConnections = 16;
constexpr int kStreamWindow = 8;  // pieces ahead of the stream that get deadlines

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

[[noreturn]] void die(int code, const std::string& why) {
    std::cerr << "corral-fetch: " << why << std::endl;
    std::exit(code);
}

const char* kUsageText =
    "usage: corral-fetch info-hash FILE.torrent\n"
    "       corral-fetch get --torrent F --dir D --done-file P --seed-seconds S\n"
    "                        [--upload-limit BYTES/s] [--listen-port N] [--stream FIFO]\n"
    "                        [--set NAME=VALUE ...]  (a libtorrent setting, e.g. unchoke_slots_limit=8)";

std::string hex(const lt::sha1_hash& hash) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (char c : hash) {
        auto byte = static_cast<unsigned char>(c);
        out += digits[byte >> 4];
        out += digits[byte & 15];
    }
    return out;
}

std::shared_ptr<lt::torrent_info> load_torrent(const std::string& path) {
    lt::error_code ec;
    auto info = std::make_shared<lt::torrent_info>(path, ec);
    if (ec && (ec.category() == lt::generic_category() || ec.category() == lt::system_category()))
        die(kFailed, "cannot read " + path + ": " + ec.message());
    if (ec) die(kFailed, path + ": not a torrent: " + ec.message());
    if (!info->info_hashes().has_v1()) die(kFailed, path + ": not a v1 torrent");
    if (info->num_files() != 1) die(kFailed, path + ": a torrent of one file expected");
    return info;
}

long number(const std::string& flag, const std::string& text, long low, long high) {
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || value < low || value > high)
        die(kUsage, flag + " wants a whole number from " + std::to_string(low) + " to " +
                        std::to_string(high) + ", not '" + text + "'");
    return value;
}

struct Options {
    std::string torrent, dir, done_file, stream;
    long seed_seconds = -1, upload_limit = 0, listen_port = 6881;
    std::vector<std::pair<std::string, std::string>> settings;  // --set, applied last
};

// --set NAME=VALUE: any libtorrent setting by its name, for tuning on a given network
// (the defaults below are what bench/provision measured best); a bad name or value
// is a usage error, never silently ignored.
void apply_setting(lt::settings_pack& s, const std::string& name, const std::string& value) {
    int index = lt::setting_by_name(name);
    if (index < 0) die(kUsage, "--set: no libtorrent setting is called '" + name + "'");
    switch (index & lt::settings_pack::type_mask) {
        case lt::settings_pack::string_type_base: s.set_str(index, value); break;
        case lt::settings_pack::bool_type_base:
            if (value != "true" && value != "false" && value != "1" && value != "0")
                die(kUsage, "--set " + name + " wants true or false, not '" + value + "'");
            s.set_bool(index, value == "true" || value == "1");
            break;
        default:
            s.set_int(index, static_cast<int>(number("--set " + name, value, -(1L << 31) + 1,
                                                     (1L << 31) - 1)));
    }
}

Options parse_get(const std::vector<std::string>& args) {
    Options o;
    for (size_t i = 0; i < args.size(); i += 2) {
        const std::string& flag = args[i];
        if (i + 1 >= args.size()) die(kUsage, flag + " wants a value\n" + kUsageText);
        const std::string& value = args[i + 1];
        if (flag == "--torrent") o.torrent = value;
        else if (flag == "--dir") o.dir = value;
        else if (flag == "--done-file") o.done_file = value;
        else if (flag == "--seed-seconds") o.seed_seconds = number(flag, value, 0, 1L << 30);
        else if (flag == "--upload-limit") o.upload_limit = number(flag, value, 0, 1L << 30);
        else if (flag == "--listen-port") o.listen_port = number(flag, value, 0, 65535);
        else if (flag == "--stream") o.stream = value;
        else if (flag == "--set") {
            auto eq = value.find('=');
            if (eq == std::string::npos || eq == 0)
                die(kUsage, "--set wants NAME=VALUE, not '" + value + "'");
            o.settings.emplace_back(value.substr(0, eq), value.substr(eq + 1));
            lt::settings_pack check;  // a bad name or value stops here, before any work
            apply_setting(check, o.settings.back().first, o.settings.back().second);
        }
        else die(kUsage, "unknown option " + flag + "\n" + kUsageText);
    }
    if (o.torrent.empty() || o.dir.empty() || o.done_file.empty() || o.seed_seconds < 0)
        die(kUsage, std::string("get needs --torrent, --dir, --done-file and --seed-seconds\n") +
                        kUsageText);
    return o;
}

lt::settings_pack lan_settings(const Options& o) {
    lt::settings_pack s;
    s.set_str(lt::settings_pack::listen_interfaces, "0.0.0.0:" + std::to_string(o.listen_port));
    s.set_bool(lt::settings_pack::enable_dht, false);
    s.set_bool(lt::settings_pack::enable_lsd, false);
    s.set_bool(lt::settings_pack::enable_upnp, false);
    s.set_bool(lt::settings_pack::enable_natpmp, false);
    s.set_bool(lt::settings_pack::enable_incoming_utp, false);  // TCP: the LAN needs no uTP
    s.set_bool(lt::settings_pack::enable_outgoing_utp, false);
    // nodes behind one address (a lab on loopback, a NAT) are still distinct peers
    s.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
    s.set_int(lt::settings_pack::unchoke_slots_limit, -1);  // unchoke every interested peer
    s.set_int(lt::settings_pack::connections_limit, kConnections);
    s.set_int(lt::settings_pack::upload_rate_limit, static_cast<int>(o.upload_limit));
    // libtorrent stretches a tracker's interval to 5 minutes by default; corral's tracker
    // asks for 15 s during a boot storm so late joiners find peers
    s.set_int(lt::settings_pack::min_announce_interval, 1);
    s.set_str(lt::settings_pack::peer_fingerprint, "-CF0100-");
    s.set_int(lt::settings_pack::alert_mask,
              lt::alert_category::error | lt::alert_category::status |
                  lt::alert_category::tracker | lt::alert_category::piece_progress);
    for (const auto& [name, value] : o.settings) apply_setting(s, name, value);
    return s;
}

std::string mib(std::int64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return buf;
}

void progress(const lt::torrent_status& st) {
    char line[200];
    if (st.is_seeding) {
        std::snprintf(line, sizeof line, "seeding: %s uploaded, %d peers",
                      mib(st.all_time_upload).c_str(), st.num_peers);
    } else {
        std::snprintf(line, sizeof line, "%s of %s (%.0f%%), %d peers, %.1f MB/s down",
                      mib(st.total_wanted_done).c_str(), mib(st.total_wanted).c_str(),
                      st.progress * 100.0, st.num_peers, st.download_payload_rate / 1e6);
    }
    std::cout << "corral-fetch: " << line << std::endl;
}

void write_done(const std::string& done_file, const std::string& path) {
    // written whole then renamed: the init reads it as soon as it is non-empty
    std::string tmp = done_file + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << path << "\n";
        if (!out.flush()) die(kFailed, "cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), done_file.c_str()) != 0)
        die(kFailed, "cannot write " + done_file + ": " + std::strerror(errno));
}

// --stream: the file's bytes in order, each piece once libtorrent has verified it, to
// a FIFO (or a file). The next kStreamWindow pieces get deadlines, so libtorrent asks
// for them first; the others stay rarest first, as the swarm needs. A thread writes,
// so a reader slower than the swarm never holds up the session's loop.
class Stream {
  public:
    // `info` is shared, not borrowed: a writer left detached at exit still reads it
    Stream(std::string path, std::string file, std::shared_ptr<const lt::torrent_info> info)
        : path_(std::move(path)), file_(std::move(file)), info_(std::move(info)),
          pieces_(info_->num_pieces()), deadline_(pieces_, false),
          writer_([this] { run(); }) {}

    ~Stream() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            quit_ = true;
        }
        cv_.notify_all();
        if (finished_ || stopped_) writer_.join();
        else writer_.detach();  // blocked on a reader that never came: the exit ends it
    }

    // main thread: how many pieces are verified in a row from the first; deadlines ahead
    void advance(lt::torrent_handle& handle) {
        int ready = ready_;
        while (ready < pieces_ && handle.have_piece(lt::piece_index_t{ready})) ++ready;
        if (ready != ready_) {
            {
                std::lock_guard<std::mutex> lock(mu_);
                ready_ = ready;
            }
            cv_.notify_all();
        }
        for (int i = ready; i < std::min(pieces_, ready + kStreamWindow); ++i) {
            if (deadline_[i] || handle.have_piece(lt::piece_index_t{i})) continue;
            handle.set_piece_deadline(lt::piece_index_t{i}, 200 * (i - ready + 1));
            deadline_[i] = true;
        }
    }

    // the writer is done: every byte given to the reader, or it failed (error())
    bool finished() const { return finished_ || stopped_; }

    std::string error() {
        std::lock_guard<std::mutex> lock(mu_);
        return error_;
    }

  private:
    void fail(const std::string& why) {
        std::lock_guard<std::mutex> lock(mu_);
        error_ = why;
    }

    void run() {
        int out = -1;
        do out = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        while (out < 0 && errno == EINTR);
        if (out < 0) {
            fail(std::string("cannot open: ") + std::strerror(errno));
            stopped_ = true;
            return;
        }
        int in = -1;
        // a failed stream still closes the FIFO: its reader sees the end, not a hang
        if (!stream_all(out, in)) {
            if (in >= 0) close(in);
            close(out);
            stopped_ = true;
        }
    }

    bool stream_all(int out, int& in) {
        std::vector<char> buffer(static_cast<size_t>(info_->piece_length()));
        for (int next = 0; next < pieces_; ++next) {
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] { return ready_ > next || quit_; });
                if (ready_ <= next) return false;  // quitting unfinished
            }
            if (in < 0 && (in = open(file_.c_str(), O_RDONLY | O_CLOEXEC)) < 0) {
                fail("cannot read " + file_ + ": " + std::strerror(errno));
                return false;
            }
            const auto size = static_cast<size_t>(info_->piece_size(lt::piece_index_t{next}));
            const off_t offset = static_cast<off_t>(next) * info_->piece_length();
            if (!copy(in, offset, size, out, buffer)) return false;
        }
        close(in);
        in = -1;
        if (close(out) != 0) {
            fail(std::strerror(errno));
            stopped_ = true;
            return true;  // closed already
        }
        finished_ = true;
        return true;
    }

    bool copy(int in, off_t offset, size_t size, int out, std::vector<char>& buffer) {
        for (size_t got = 0; got < size;) {
            ssize_t n = pread(in, buffer.data() + got, size - got, offset + got);
            if (n <= 0) {
                fail("cannot read " + file_ + ": " + (n < 0 ? std::strerror(errno) : "short"));
                return false;
            }
            got += static_cast<size_t>(n);
        }
        for (size_t put = 0; put < size;) {
            ssize_t n = write(out, buffer.data() + put, size - put);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                fail(std::string("cannot write: ") + std::strerror(errno));  // EPIPE: no reader
                return false;
            }
            put += static_cast<size_t>(n);
        }
        return true;
    }

    const std::string path_, file_;
    const std::shared_ptr<const lt::torrent_info> info_;
    const int pieces_;
    std::vector<bool> deadline_;  // main thread only
    std::mutex mu_;
    std::condition_variable cv_;
    int ready_ = 0;  // under mu_ (written by the main thread only)
    bool quit_ = false;
    std::string error_;
    std::atomic<bool> finished_{false};
    std::atomic<bool> stopped_{false};  // failed: the FIFO is closed, nothing more is sent
    std::thread writer_;  // last: starts once the rest is set
};

// whether an announce is in flight from a local endpoint the tracker has answered before
// (an endpoint that cannot reach it, e.g. another interface, is never answered)
bool announcing(const lt::torrent_handle& handle) {
    for (const lt::announce_entry& tracker : handle.trackers())
        for (const lt::announce_endpoint& endpoint : tracker.endpoints)
            for (const lt::announce_infohash& hash : endpoint.info_hashes)
                if (hash.updating && hash.start_sent) return true;
    return false;
}

// Tell the tracker this node is leaving, so it is handed out no more. Pausing the
// torrent sends `stopped` (session.abort() alone did not, for an unfinished download),
// but not to a tracker with an announce in flight (the `completed` one, when seeding
// is 0 s): wait for that answer first, then for the tracker's answer, a few seconds each.
void announce_stopped(lt::session& session, lt::torrent_handle& handle) {
    std::vector<lt::alert*> alerts;
    auto give_up = Clock::now() + std::chrono::seconds(3);
    while (announcing(handle) && Clock::now() < give_up) {
        session.wait_for_alert(std::chrono::milliseconds(100));
        session.pop_alerts(&alerts);
    }
    handle.pause();
    give_up = Clock::now() + std::chrono::seconds(3);
    for (bool answered = false; !answered && Clock::now() < give_up;) {
        session.wait_for_alert(std::chrono::milliseconds(100));
        session.pop_alerts(&alerts);
        for (lt::alert* a : alerts)
            answered = answered || lt::alert_cast<lt::tracker_reply_alert>(a) ||
                       lt::alert_cast<lt::tracker_error_alert>(a);
    }
}

int get(const Options& o) {
    auto info = load_torrent(o.torrent);
    lt::session session(lan_settings(o));
    lt::add_torrent_params params;
    params.ti = info;
    params.save_path = o.dir;
    params.storage_mode = lt::storage_mode_sparse;  // no pre-allocation
    params.flags &= ~(lt::torrent_flags::paused | lt::torrent_flags::auto_managed);
    lt::error_code ec;
    lt::torrent_handle handle = session.add_torrent(std::move(params), ec);
    if (ec) die(kFailed, o.torrent + ": " + ec.message());
    const std::string file = o.dir + "/" + info->files().file_path(lt::file_index_t{0});
    std::unique_ptr<Stream> stream;
    if (!o.stream.empty()) stream = std::make_unique<Stream>(o.stream, file, info);
    bool stream_failed = false;

    std::map<std::string, std::string> tracker_said;  // url -> last message, printed once
    bool done = false;
    auto seed_until = Clock::time_point::max();
    auto next_progress = Clock::now() + kProgressEvery;
    // with a stream, not before the reader has had every byte (even at 0 s of seeding)
    while (!g_stop && (Clock::now() < seed_until || (stream && !stream->finished()))) {
        session.wait_for_alert(std::chrono::milliseconds(500));
        std::vector<lt::alert*> alerts;
        session.pop_alerts(&alerts);
        for (lt::alert* a : alerts) {
            if (auto* e = lt::alert_cast<lt::torrent_error_alert>(a)) {
                die(kFailed, "torrent error: " + e->error.message() + " (" + e->filename() + ")");
            } else if (auto* e = lt::alert_cast<lt::file_error_alert>(a)) {
                die(kFailed, std::string(e->filename()) + ": " + e->error.message());
            } else if (auto* e = lt::alert_cast<lt::listen_failed_alert>(a)) {
                die(kFailed, "cannot listen on " + e->address.to_string() + ":" +
                                 std::to_string(e->port) + ": " + e->error.message());
            } else if (auto* e = lt::alert_cast<lt::tracker_error_alert>(a)) {
                std::string said = e->error.message();
                if (*e->failure_reason()) said += std::string(": ") + e->failure_reason();
                std::string url = e->tracker_url();
                if (tracker_said[url] != said)
                    std::cout << "corral-fetch: tracker " << url << ": " << said << std::endl;
                tracker_said[url] = said;
            } else if (auto* e = lt::alert_cast<lt::tracker_reply_alert>(a)) {
                std::string url = e->tracker_url();
                if (tracker_said[url] != "ok")  // the first answer, and the first after errors
                    std::cout << "corral-fetch: tracker " << url << ": " << e->num_peers
                              << " peers" << std::endl;
                tracker_said[url] = "ok";
            } else if (lt::alert_cast<lt::torrent_finished_alert>(a) && !done) {
                done = true;
                write_done(o.done_file, file);
                std::cout << "corral-fetch: complete: " << file << "; seeding " << o.seed_seconds
                          << " s" << std::endl;
                seed_until = Clock::now() + std::chrono::seconds(o.seed_seconds);
            }
        }
        if (stream && !stream_failed) {
            stream->advance(handle);
            std::string err = stream->error();
            if (!err.empty()) {  // the download goes on: the init unpacks the file instead
                std::cout << "corral-fetch: stream to " << o.stream << " stopped: " << err
                          << std::endl;
                stream_failed = true;
            }
        }
        if (Clock::now() >= next_progress) {
            progress(handle.status());
            next_progress += kProgressEvery;
        }
    }
    progress(handle.status());
    announce_stopped(session, handle);
    { lt::session_proxy proxy = session.abort(); }
    if (!done) die(kStopped, "stopped before the download completed");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 2 && args[0] == "info-hash") {
        std::cout << hex(load_torrent(args[1])->info_hashes().v1) << std::endl;
        return 0;
    }
    if (!args.empty() && args[0] == "get") {
        Options o = parse_get(std::vector<std::string>(args.begin() + 1, args.end()));
        struct sigaction action {};
        action.sa_handler = on_signal;
        action.sa_flags = SA_RESTART;  // a signal on the writer thread does not fail its open()
        sigaction(SIGTERM, &action, nullptr);
        sigaction(SIGINT, &action, nullptr);
        std::signal(SIGPIPE, SIG_IGN);  // a reader gone is an error from write(), not death
        return get(o);
    }
    die(kUsage, kUsageText);
}
