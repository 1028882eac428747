// Who a connection is (PROTOCOL 2), checked before the upgrade: a ticket,
// then a bearer token, then anonymous (only with --allow-anonymous). Errors
// answer 401/403 without echoing the credential; query options come after.

#include <fmt/format.h>
#include <strings.h>

#include <charconv>

#include "core/log.h"
#include "protocol/json_writer.h"
#include "protocol/route.h"
#include "rooms/app.h"
#include "rooms/owner.h"

namespace rc::rooms {
namespace {

// The first query parameter named `key`, form-decoded.
bool query_param(std::string_view query, std::string_view key, std::string& out) {
  bool found = false;
  bool ok = true;
  http::for_each_query_param(query, [&](std::string_view k, std::string_view v) {
    if (found || k != key) return;
    found = true;
    ok = http::form_decode(v, out);
  });
  return found && ok;
}

// since=S: absent is fine; present must be a non-negative integer.
bool parse_since(std::string_view query, UpgradeHandoff& h) {
  std::string text;
  bool present = false;
  http::for_each_query_param(query, [&](std::string_view k, std::string_view) {
    if (k == "since") present = true;
  });
  if (!present) return true;
  if (!query_param(query, "since", text)) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, h.since);
  if (text.empty() || ec != std::errc() || ptr != end) return false;
  h.has_since = true;
  return true;
}

Identity identity_of(const jwt::Claims& c) {
  Identity who;
  who.user_id = c.sub;
  who.name = c.name;
  who.role = c.role == jwt::Role::kTeacher ? Role::kTeacher : Role::kStudent;
  who.may_rename = !c.has_name;
  return who;
}

}  // namespace

std::optional<jwt::Claims> App::bearer_claims(Session& s, const http::Request& req) {
  std::string_view auth = req.header("authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (auth.size() <= kScheme.size() ||
      strncasecmp(auth.data(), kScheme.data(), kScheme.size()) != 0) {
    reject(s, 401, "UNAUTHORIZED", "expected 'Authorization: Bearer <token>'");
    return std::nullopt;
  }
  if (ctx_.jwt_secret.empty()) {
    reject(s, 401, "UNAUTHORIZED", "this server accepts no tokens (no --jwt-secret-file)");
    return std::nullopt;
  }
  std::string_view token = auth.substr(kScheme.size());
  auto verdict = jwt::verify(token, ctx_.jwt_secret, wall_ms() / 1000);
  if (auto* err = std::get_if<jwt::Error>(&verdict)) {
    reject(s, 401, "UNAUTHORIZED", err->message);
    return std::nullopt;
  }
  return std::get<jwt::Claims>(std::move(verdict));
}

void App::on_ticket_request(Session& s, const http::Request& req) {
  std::optional<jwt::Claims> claims = bearer_claims(s, req);
  if (!claims) return;
  const std::int64_t wall = wall_ms();
  // expires_in is what the ticket really has; one that could not be used in
  // time is not issued (the token is still accepted within its exp's skew).
  const std::int64_t ttl_ms = TicketStore::ttl_ms(*claims, wall);
  if (ttl_ms < 1000) {
    reject(s, 401, "UNAUTHORIZED", "the token expires within a second: too late for a ticket");
    return;
  }
  std::string ticket = tickets_.issue(*claims, shard_.now_ms(), wall, random_);
  if (ticket.empty()) {
    reject(s, 503, "TOO_MANY_TICKETS", "too many outstanding tickets; try again shortly");
    return;
  }
  std::string body;
  json::Writer(body)
      .begin_object()
      .field("ticket", std::string_view(ticket))
      .field("expires_in", ttl_ms / 1000)
      .end_object();
  answer(s, http::response(201, "application/json", body, "Cache-Control: no-store\r\n", true),
         true);
}

std::size_t App::on_room_request(Session& s, const http::Request& req, std::string_view room) {
  if (ctx_.group.shutting_down()) {
    reject(s, 503, "SHUTTING_DOWN", "the server is shutting down");
    return req.head_bytes;
  }
  auto h = std::make_unique<UpgradeHandoff>();
  h->room.assign(room);
  h->accept_key = ws::accept_key(req.header("sec-websocket-key"));
  std::string ticket;
  if (query_param(req.query, "ticket", ticket)) {
    std::optional<std::uint32_t> issuer = TicketStore::issuer(ticket, ctx_.group.size());
    if (!issuer) {
      reject(s, 401, "UNAUTHORIZED", "unknown, used or expired ticket");
      return req.head_bytes;
    }
    h->redeem = true;
    h->ticket = std::move(ticket);
    h->raw_query.assign(req.query);
    if (*issuer == shard_.index()) {
      redeem_ticket(s, std::move(h));
    } else {
      // Only the issuing shard can consume the ticket: hand the connection over.
      shard_.set_app_data(s.id, nullptr);
      shard_.handoff(s.id, *issuer, h.release());
      remove_session(&s);
    }
    return req.head_bytes;
  }
  if (req.has_header("authorization")) {
    std::optional<jwt::Claims> claims = bearer_claims(s, req);
    if (!claims) return req.head_bytes;
    if (!claims->allows(room)) {
      reject(s, 403, "FORBIDDEN", fmt::format("the token does not cover room {}", room));
      return req.head_bytes;
    }
    h->who = identity_of(*claims);
    if (!parse_since(req.query, *h)) {
      reject(s, 400, "BAD_REQUEST", "since: must be a non-negative integer");
      return req.head_bytes;
    }
  } else if (ctx_.config.allow_anonymous) {
    Result<http::UpgradeQuery> q = http::parse_upgrade_query(req.query);
    if (!q) {
      reject(s, 400, "BAD_REQUEST", q.status().message());
      return req.head_bytes;
    }
    h->who.user_id = q->has_user_id ? q->user_id : "anon-" + random_.token(9);
    h->who.name = q->has_name ? q->name : h->who.user_id;
    h->since = q->since;
    h->has_since = q->has_since;
  } else {
    reject(s, 401, "UNAUTHORIZED", "credentials required: a ticket or a bearer token");
    return req.head_bytes;
  }
  route_upgrade(s, std::move(h));
  return req.head_bytes;
}

void App::redeem_ticket(Session& s, std::unique_ptr<UpgradeHandoff> h) {
  std::optional<jwt::Claims> claims = tickets_.redeem(h->ticket, shard_.now_ms());
  if (!claims) {
    reject(s, 401, "UNAUTHORIZED", "unknown, used or expired ticket");
    return;
  }
  if (!claims->allows(h->room)) {
    reject(s, 403, "FORBIDDEN", fmt::format("the ticket does not cover room {}", h->room));
    return;
  }
  h->who = identity_of(*claims);
  if (!parse_since(h->raw_query, *h)) {
    reject(s, 400, "BAD_REQUEST", "since: must be a non-negative integer");
    return;
  }
  h->redeem = false;
  route_upgrade(s, std::move(h));
}

void App::route_upgrade(Session& s, std::unique_ptr<UpgradeHandoff> h) {
  stats_.upgrades_total.add();
  std::uint32_t owner = owner_shard(h->room, ctx_.group.size());
  if (owner == shard_.index()) {
    accept_upgrade(s, *h);
    return;
  }
  // The session continues on the owner's thread; this shard forgets it.
  shard_.set_app_data(s.id, nullptr);
  shard_.handoff(s.id, owner, h.release());
  remove_session(&s);
}

}  // namespace rc::rooms
