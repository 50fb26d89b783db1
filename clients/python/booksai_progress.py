"""Publish the progress of books to booksai-progress from Python (docs/protocol.md).

Needs only redis-py (4.3.4 as Debian ships it, or current): RedisPublisher writes straight into
Redis (one Redis, a Sentinel-managed master, or Redis Cluster) with the server's own commit
script; HttpPublisher posts to the server with the standard library.

    from booksai_progress import RedisPublisher
    p = RedisPublisher.single("redis://localhost:6379", tenant="acme")
    p.publish("book-1", status="GENERATING", generationStep="CHAPTERS", currentChapter=1,
              totalChapters=10, overallProgress=12.5, message="Writing Chapter 1 of 10...")
    offset = p.append_text("book-1", 1, 1, 0, "It was a bright cold day")  # live text: the new length
    offset = p.append_text("book-1", 1, 1, offset, ", and the clocks")
    p.complete("book-1")

test/clients/python.test.ts runs this module against real Redis servers and the server, and
test/clients/embed.test.ts checks that docs/protocol.md quotes it and that COMMIT, BEGIN_SECTION
and APPEND_TEXT are the server's scripts (`npm run docs:embed` copies them).
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

__all__ = [
    "RedisPublisher", "HttpPublisher", "InvalidState", "TextRefused", "OffsetMismatch", "TextTooLarge", "Fenced", "HttpError",
    "mint_token", "partition_of", "names", "text_names", "LAST_SAVED_SQL", "COMMIT", "BEGIN_SECTION", "APPEND_TEXT",
]

# The server's commit script, byte for byte (src/broker/scripts.ts COMMIT).
COMMIT = r"""
local function strictJson(json)
  -- cjson also reads 0x1, 01, +1, NaN and Infinity, which JSON.parse (the server) refuses: outside
  -- string literals a state holds only digits, . e E -, structure, whitespace, true false null.
  local bare, pos = {}, 1
  while true do
    local q = string.find(json, '"', pos, true)
    if not q then bare[#bare + 1] = string.sub(json, pos) break end
    bare[#bare + 1] = string.sub(json, pos, q - 1)
    local e = q + 1
    while true do
      local c = string.find(json, '["\\]', e)
      if not c then return false end
      if string.byte(json, c) == 92 then e = c + 2 else e = c + 1 break end
    end
    bare[#bare + 1] = '""'
    pos = e
  end
  local rest = ' ' .. string.gsub(string.gsub(table.concat(bare), 'true', ''), 'false', '')
  rest = string.gsub(rest, 'null', '')
  if string.find(rest, '[^%s%d%.eE%-:,%[%]{}"]') then return false end
  return not string.find(rest, '[^%d%.eE]0%d')
end

local function stateProblem(json, bookId)
  local ok, s = pcall(cjson.decode, json)
  if not ok or type(s) ~= 'table' then return 'the state is not a JSON object (or holds an unpaired surrogate)' end
  if not strictJson(json) then return 'the state is not strict JSON (numbers such as 0x1, 01, +1, NaN or Infinity)' end
  if s.stalledSince ~= nil then return 'stalledSince is computed by the server when it answers, never stored' end
  local function integer(name, min, max, optional)
    local v = s[name]
    if v == nil and optional then return nil end
    if type(v) ~= 'number' or not (v >= min and v <= max) or v % 1 ~= 0 then
      return name .. ' must be an integer from ' .. string.format('%d', min) .. ' to ' .. string.format('%d', max)
    end
  end
  local function units(t)
    local _, lead = string.gsub(t, '[^\128-\191]', '')
    local _, astral = string.gsub(t, '[\240-\247]', '')
    return lead + astral
  end
  local function text(name, max, optional)
    local v = s[name]
    if v == nil and optional then return nil end
    if type(v) ~= 'string' or (#v > max and units(v) > max) then return name .. ' must be a string of at most ' .. max .. ' characters' end
    if string.find(v, '%z') then return name .. ' must not contain NUL' end
  end
  if s.bookId ~= bookId then return 'bookId must be the id of the book' end
  if not ({ PLANNING = true, GENERATING = true, COMPLETE = true, ERROR = true })[s.status] then return 'status must be one of PLANNING GENERATING COMPLETE ERROR' end
  if not ({ PLANNING = true, RESEARCH = true, OUTLINE = true, STRUCTURE = true, CHAPTERS = true, PROOFREADING = true, COMPLETE = true })[s.generationStep] then return 'generationStep must be one of PLANNING RESEARCH OUTLINE STRUCTURE CHAPTERS PROOFREADING COMPLETE' end
  local problem = integer('currentChapter', 0, 100000) or integer('totalChapters', 0, 100000)
    or integer('currentSection', 0, 100000) or integer('totalSections', 0, 100000)
    or text('message', 2000) or text('error', 8000, true)
    or integer('timestamp', 0, 9007199254740991) or integer('startTime', 0, 9007199254740991, true)
    or integer('estimatedEndTime', 0, 9007199254740991, true) or integer('estimatedEndTimeLate', 0, 9007199254740991, true)
    or integer('version', 1, 9007199254740991)
  if problem then return problem end
  if s.currentChapter > s.totalChapters then return 'currentChapter must not exceed totalChapters' end
  if s.currentSection > s.totalSections then return 'currentSection must not exceed totalSections' end
  local p = s.overallProgress
  if type(p) ~= 'number' or not (p >= 0 and p <= 100) then return 'overallProgress must be a number from 0 to 100' end
  local t = s.tenant
  if t ~= nil and (type(t) ~= 'string' or #t == 0 or (#t > 256 and units(t) > 256) or string.find(t, '[%z\1-\31\127]')) then
    return 'tenant must be 1-256 characters without control characters'
  end
  local last = string.match(string.sub(json, -40), '"version"[ \t\r\n]*:[ \t\r\n]*(%d+)[ \t\r\n]*}[ \t\r\n]*$')
  if tonumber(last) ~= s.version then return 'version must be the last field' end
  return nil, s.version, s.status
end

local problem, version, status = stateProblem(ARGV[2], ARGV[5])
if problem then return redis.error_reply('INVALID_STATE ' .. problem) end
local fence = ARGV[6]
if fence and fence ~= '' then
  if tonumber(redis.call('GET', KEYS[3]) or '0') > tonumber(fence) then return -1 end
end
local tail = redis.call('GETRANGE', KEYS[1], -40, -1)
-- A state ends with its version (ours always do): read it from the last bytes, without copying
-- or decoding the whole JSON.
local heldVersion = string.match(tail, '"version"[ \t\r\n]*:[ \t\r\n]*(%d+)[ \t\r\n]*}[ \t\r\n]*$') or ''
if heldVersion == '' and tail ~= '' then
  local ok, decoded = pcall(cjson.decode, redis.call('GET', KEYS[1]))
  if ok and type(decoded) == 'table' and type(decoded.version) == 'number' then
    heldVersion = string.format('%d', decoded.version)
  end
end
if heldVersion ~= ARGV[1] then return {0, redis.call('GET', KEYS[1]) or ''} end
if heldVersion ~= '' and version <= tonumber(heldVersion) then
  return redis.error_reply('INVALID_STATE version must be above the held version ' .. heldVersion)
end
local ttl, finished = ARGV[3], status == 'COMPLETE' or status == 'ERROR'
if finished then
  ttl = ARGV[9]
  if not ttl or ttl == '' then ttl = '3600' end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
redis.call('SADD', KEYS[2], ARGV[5])
local publish = 'PUBLISH'
if ARGV[7] == 'SPUBLISH' then publish = 'SPUBLISH' end
redis.call(publish, ARGV[4], ARGV[2])
if ARGV[8] and ARGV[8] ~= '' then redis.call(publish, ARGV[8], ARGV[2]) end
if fence and fence ~= '' then redis.call('SET', KEYS[3], fence, 'EX', ttl) end
if finished and KEYS[4] and ARGV[10] and ARGV[10] ~= '' then
  -- LT: a section's shorter expiry (its chapter was saved) stays.
  for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
    if string.match(field, '^%d+:%d+$') then redis.call('EXPIRE', ARGV[10] .. field, ttl, 'LT') end
  end
  redis.call('EXPIRE', KEYS[4], ttl, 'LT')
end
return 1
"""

# The server's live-text scripts, byte for byte (src/broker/scripts.ts BEGIN_SECTION, APPEND_TEXT).
BEGIN_SECTION = r"""
local chapter, section = tonumber(ARGV[1]), tonumber(ARGV[2])
if not chapter or not section then return redis.error_reply('ERR chapter and section must be integers') end
local fence = ARGV[3]
if fence ~= '' and tonumber(redis.call('GET', KEYS[3]) or '0') > tonumber(fence) then return {-1} end
chapter, section = string.format('%d', chapter), string.format('%d', section)
local field = chapter .. ':' .. section
local publish = 'PUBLISH'
if ARGV[7] == 'SPUBLISH' then publish = 'SPUBLISH' end
local function announce(attempt, offset, text, reset)
  local message = '{"bookId":' .. cjson.encode(ARGV[6]) .. ',"chapter":' .. chapter .. ',"section":' .. section ..
    ',"attempt":' .. attempt .. ',"offset":' .. offset .. ',"text":' .. cjson.encode(text) .. (reset and ',"reset":true}' or '}')
  redis.call(publish, ARGV[5], message)
  if ARGV[8] ~= '' then redis.call(publish, ARGV[8], message) end
end
local function keep(attempt)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('HSET', KEYS[2], field, attempt, 'current', field)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  if fence ~= '' then redis.call('SET', KEYS[3], fence, 'EX', ARGV[4]) end
end

-- Attempts only go up: after the section's text expired, its attempt is still in the hash.
local held = redis.call('EXISTS', KEYS[1]) == 1
local attempt = tonumber(redis.call('HGET', KEYS[2], field) or '0') + 1
redis.call('SET', KEYS[1], '')
keep(attempt)
if held then announce(attempt, 0, '', true) end
return {1, attempt}
"""

APPEND_TEXT = r"""
local chapter, section = tonumber(ARGV[1]), tonumber(ARGV[2])
if not chapter or not section then return redis.error_reply('ERR chapter and section must be integers') end
local fence = ARGV[3]
if fence ~= '' and tonumber(redis.call('GET', KEYS[3]) or '0') > tonumber(fence) then return {-1} end
chapter, section = string.format('%d', chapter), string.format('%d', section)
local field = chapter .. ':' .. section
local publish = 'PUBLISH'
if ARGV[7] == 'SPUBLISH' then publish = 'SPUBLISH' end
local function announce(attempt, offset, text, reset)
  local message = '{"bookId":' .. cjson.encode(ARGV[6]) .. ',"chapter":' .. chapter .. ',"section":' .. section ..
    ',"attempt":' .. attempt .. ',"offset":' .. offset .. ',"text":' .. cjson.encode(text) .. (reset and ',"reset":true}' or '}')
  redis.call(publish, ARGV[5], message)
  if ARGV[8] ~= '' then redis.call(publish, ARGV[8], message) end
end
local function keep(attempt)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('HSET', KEYS[2], field, attempt, 'current', field)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  if fence ~= '' then redis.call('SET', KEYS[3], fence, 'EX', ARGV[4]) end
end

local length = redis.call('STRLEN', KEYS[1])
if tonumber(ARGV[9]) ~= length then return {0, length} end
if length + #ARGV[10] > tonumber(ARGV[11]) then return {2, length} end
-- A section held is at its attempt; a fresh one after an expired one is a new attempt, never its old number again.
local stored = tonumber(redis.call('HGET', KEYS[2], field) or '0')
local attempt = stored + 1
if redis.call('EXISTS', KEYS[1]) == 1 then attempt = math.max(stored, 1) end
local grown = redis.call('APPEND', KEYS[1], ARGV[10])
keep(attempt)
announce(attempt, length, ARGV[10], false)
return {1, grown}
"""

STATUSES = ("PLANNING", "GENERATING", "COMPLETE", "ERROR")
EDITABLE = frozenset((
    "status", "generationStep", "currentChapter", "totalChapters", "currentSection", "totalSections",
    "overallProgress", "message", "error", "startTime", "estimatedEndTime",
))


class InvalidState(ValueError):
    """The commit script refused the state (INVALID_STATE <reason>): the book keeps its state."""


class TextRefused(Exception):
    """An append or reset that changed nothing; `length` is the section's length in UTF-8 bytes (None when fenced)."""
    code = "text_refused"

    def __init__(self, message, length=None):
        super().__init__(message)
        self.length = length


class OffsetMismatch(TextRefused):
    """`offset` was not the section's length: nothing was written. A retry whose first try landed
    gets this too, so text is never doubled: go on from `length` (or start the section over)."""
    code = "offset_mismatch"


class TextTooLarge(TextRefused):
    """The section would pass its size limit (MAX_SECTION_TEXT_BYTES): nothing was written."""
    code = "text_too_large"


class Fenced(TextRefused):
    """A writer with a higher fence (lease epoch) wrote to the book: this one was superseded."""
    code = "fenced"


# [docs/protocol.md: keys]
PARTITIONS = 256


def partition_of(book_id):
    """FNV-1a (32 bit) of the bookId's UTF-8 bytes, modulo 256: the book's partition on a cluster."""
    h = 0x811C9DC5
    for byte in book_id.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % PARTITIONS


def names(prefix, book_id, cluster):
    """The state key, dirty set, fence key, channel and partition feed ('' on one Redis) of a book."""
    tag = f"{{p{partition_of(book_id)}}}:" if cluster else ""
    return {
        "state": f"{prefix}{tag}progress:{book_id}",
        "dirty": f"{prefix}{tag}dirty",
        "fence": f"{prefix}{tag}fence:{book_id}",
        "channel": f"{prefix}{tag}updates:{book_id}",
        "feed": f"{prefix}{tag}feed" if cluster else "",
    }


def text_names(prefix, book_id, chapter, section, cluster):
    """The live-text keys (section text, text hash, fence), channel and feed ('' on one Redis)."""
    tag = f"{{p{partition_of(book_id)}}}:" if cluster else ""
    return {
        "text": f"{prefix}{tag}text:{book_id}:{chapter}:{section}",
        "meta": f"{prefix}{tag}textmeta:{book_id}",
        "fence": f"{prefix}{tag}fence:{book_id}",
        "channel": f"{prefix}{tag}texts:{book_id}",
        "feed": f"{prefix}{tag}textfeed" if cluster else "",
    }
# [end]


# [docs/protocol.md: last saved]
# The book's last state in Postgres, and its version (0 when the book was never saved).
LAST_SAVED_SQL = "SELECT progress, version FROM books WHERE id = %s"


def postgres_last_saved(connection):
    """last_saved for RedisPublisher from a DB-API connection (psycopg, pg8000: `%s` parameters)."""
    def last_saved(book_id):
        with connection.cursor() as cursor:
            cursor.execute(LAST_SAVED_SQL, (book_id,))
            row = cursor.fetchone()
        if row is None:
            return None, 0
        progress = json.loads(row[0]) if isinstance(row[0], str) else row[0]
        return progress, row[1]
    return last_saved
# [end]


# [docs/protocol.md: next state]
NEW_BOOK = {
    "status": "PLANNING", "generationStep": "PLANNING", "currentChapter": 0, "totalChapters": 0,
    "currentSection": 0, "totalSections": 0, "overallProgress": 0, "message": "",
}


def next_state(book_id, base, fields, version, tenant=None, now_ms=None):
    """`base` (the held or saved state, or None) merged with `fields`, `version` the last key."""
    unknown = set(fields) - EDITABLE
    if unknown:
        raise TypeError(f"unknown fields: {', '.join(sorted(unknown))}")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    state = dict(base) if base else dict(NEW_BOOK)
    state.pop("version", None)  # put back below, as the last key: a state ends with its version
    if not base and tenant is not None:
        state["tenant"] = tenant  # a new book names its tenant; a held one keeps its own
    starts_run = not base or (base["status"] in ("COMPLETE", "ERROR") and fields.get("status") not in ("COMPLETE", "ERROR"))
    if starts_run:
        state.pop("error", None)
        state["startTime"] = now_ms
    state.update(fields, bookId=book_id, timestamp=now_ms)
    if state["status"] != "ERROR":
        state.pop("error", None)
    state["version"] = version
    return state
# [end]


# [docs/protocol.md: publish]
class RedisPublisher:
    """Publishes straight into Redis, as the server does: read, merge, commit if unchanged, retry."""

    def __init__(self, client, prefix="booksai:", tenant=None, last_saved=None, pubsub="sharded", ttl_seconds=86400, terminal_ttl_seconds=3600,
                 max_section_bytes=262144):
        from redis.cluster import RedisCluster
        self.client, self.prefix, self.tenant, self.ttl_seconds = client, prefix, tenant, ttl_seconds
        # A finished state (COMPLETE, ERROR) is kept this long (the server's TERMINAL_TTL_SECONDS).
        self.terminal_ttl_seconds = terminal_ttl_seconds
        self.cluster = isinstance(client, RedisCluster)
        # On a cluster the server publishes with SPUBLISH, or PUBLISH with REDIS_CLUSTER_PUBSUB=classic.
        self.publish_command = "SPUBLISH" if self.cluster and pubsub == "sharded" else "PUBLISH"
        # (book_id) -> (progress dict or None, version): the last state Postgres holds, asked
        # when the key is missing (expired, or Redis lost it). See postgres_last_saved.
        self.last_saved = last_saved or (lambda book_id: (None, 0))
        self.written = {}  # the last version this publisher wrote per book
        # On RedisCluster the first call logs a harmless NoScriptError, then loads the script.
        self.commit = client.register_script(COMMIT)
        # Live text: a section holds at most this many UTF-8 bytes (the server's MAX_SECTION_TEXT_BYTES).
        self.max_section_bytes = max_section_bytes
        self.begin_script, self.append_script = client.register_script(BEGIN_SECTION), client.register_script(APPEND_TEXT)

    @classmethod
    def single(cls, url="redis://localhost:6379", **options):
        import redis
        return cls(redis.Redis.from_url(url), **options)

    @classmethod
    def sentinel(cls, sentinels, master_name, **options):
        from redis.sentinel import Sentinel
        return cls(Sentinel(sentinels).master_for(master_name), **options)

    @classmethod
    def cluster_of(cls, nodes, **options):
        from redis.cluster import ClusterNode, RedisCluster
        return cls(RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes]), **options)

    def publish(self, book_id, **fields):
        """Commits the book's next state (held state + fields) and returns it."""
        n = names(self.prefix, book_id, self.cluster)
        keys = [n["state"], n["dirty"], n["fence"]] if self.cluster else [n["state"], n["dirty"]]
        raw = self.client.get(n["state"])
        while True:
            held = json.loads(raw) if raw else None
            if held is not None:
                base, version, expected = held, held["version"], str(held["version"])
            else:
                base, version = self.last_saved(book_id)
                version, expected = max(version, self.written.get(book_id, 0)), ""
            state = next_state(book_id, base, fields, version + 1, self.tenant)
            args = [expected, json.dumps(state), self.ttl_seconds, n["channel"], book_id]
            args += ["", self.publish_command, n["feed"] if self.cluster else "", self.terminal_ttl_seconds]
            try:
                reply = self.commit(keys=keys, args=args)
            except Exception as error:  # redis.exceptions.ResponseError
                if str(error).startswith("INVALID_STATE"):
                    raise InvalidState(str(error)[len("INVALID_STATE "):]) from None
                raise
            if reply == 1:
                self.written[book_id] = state["version"]
                return state
            raw = reply[1] or None  # someone else published first: merge into theirs

    def complete(self, book_id, **fields):
        """Ends the run: COMPLETE, 100 %, every chapter written."""
        return self.publish(book_id, **complete_fields(self._held(book_id), fields))

    def fail(self, book_id, error, **fields):
        """Ends the run with ERROR and `error` (what failed, for people)."""
        return self.publish(book_id, **{"status": "ERROR", "error": str(error)[:8000], "message": "Book generation failed", **fields})

    def _held(self, book_id):
        raw = self.client.get(names(self.prefix, book_id, self.cluster)["state"])
        return json.loads(raw) if raw else None

# [end]

# [docs/protocol.md: live text]
    def append_text(self, book_id, chapter, section, offset, text, reset=False, fence=None):
        """Appends `text` to the section at `offset` (UTF-8 bytes written so far: the last answer, 0
        for a new section) and returns the new length; `reset` starts the section over first (offset 0).
        Raises OffsetMismatch or TextTooLarge (nothing written, `.length` the section's), or Fenced."""
        data = check_text(chapter, section, offset, text, reset).encode("utf-8")
        if reset:
            self.begin_section(book_id, chapter, section, fence)
            if not data:
                return 0
        reply = self._text(self.append_script, book_id, chapter, section, fence, [offset, data, self.max_section_bytes])
        if reply[0] == 1:
            return reply[1]
        if reply[0] == 0:
            raise OffsetMismatch(f"offset {offset} is not the length of chapter {chapter} section {section} ({reply[1]} bytes)", reply[1])
        raise TextTooLarge(f"chapter {chapter} section {section} would pass {self.max_section_bytes} bytes (it holds {reply[1]})", reply[1])

    def begin_section(self, book_id, chapter, section, fence=None):
        """Starts the section over (readers drop its text: a reset) and returns its attempt. A
        section never begun needs no call: the first append starts it at attempt 1."""
        check_text(chapter, section, 0, "", True)
        return self._text(self.begin_script, book_id, chapter, section, fence, [])[1]

    def _text(self, script, book_id, chapter, section, fence, more):
        n = text_names(self.prefix, book_id, chapter, section, self.cluster)
        args = [chapter, section, "" if fence is None else fence, self.ttl_seconds, n["channel"], book_id,
                self.publish_command, n["feed"]] + more
        reply = script(keys=[n["text"], n["meta"], n["fence"]], args=args)
        if reply[0] == -1:
            raise Fenced(f"a newer writer holds book {book_id}: fence {fence} was superseded")
        return reply


def check_text(chapter, section, offset, text, reset):
    """The checks of POST /api/ai/progress/:bookId/text; returns `text`."""
    for name, value in (("chapter", chapter), ("section", section)):
        if type(value) is not int or not 1 <= value <= 1_000_000:
            raise ValueError(f"{name} must be an integer from 1 to 1000000, not {value!r}")
    if type(offset) is not int or offset < 0 or (reset and offset != 0):
        raise ValueError(f"offset must be {'0 with reset' if reset else 'an integer from 0'}, not {offset!r}")
    if not isinstance(text, str) or (text == "" and not reset):
        raise ValueError("text must be a string, not empty (unless reset)")
    return text
# [end]


def complete_fields(held, fields):
    total = fields.get("totalChapters", (held or {}).get("totalChapters", 0))
    sections = fields.get("totalSections", (held or {}).get("totalSections", 0))
    return {"status": "COMPLETE", "generationStep": "COMPLETE", "overallProgress": 100,
            "currentChapter": total, "totalChapters": total, "currentSection": sections,
            "message": "Book generation complete", **fields}


# [docs/protocol.md: http]
def mint_token(secret, sub, tenant=None, scope="progress:write", ttl_seconds=900):
    """An HS256 JWT signed with AUTH_JWT_SECRET, with the standard library only."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    now = int(time.time())
    claims = {"sub": sub, "scope": scope, "iat": now, "exp": now + ttl_seconds}
    if tenant is not None:
        claims["tenant"] = tenant
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


class HttpPublisher:
    """Publishes through the server (POST /api/ai/progress/:bookId), which merges, derives and versions."""

    def __init__(self, base_url, token=None, tenant_header=None, timeout=10):
        self.base_url, self.token, self.tenant_header, self.timeout = base_url.rstrip("/"), token, tenant_header, timeout

    def publish(self, book_id, **fields):
        """Posts a partial update; returns the committed state. Raises HttpError on a 4xx/5xx answer."""
        return self._post(f"/api/ai/progress/{book_id}", fields)

    def complete(self, book_id, **fields):
        return self.publish(book_id, **{"status": "COMPLETE", "generationStep": "COMPLETE", "message": "Book generation complete", **fields})

    def fail(self, book_id, error, **fields):
        return self.publish(book_id, **{"status": "ERROR", "error": str(error)[:8000], "message": "Book generation failed", **fields})

    def append_text(self, book_id, chapter, section, offset, text, reset=False, fence=None):
        """RedisPublisher.append_text through POST /api/ai/progress/:bookId/text (the book needs a
        state first); returns the new length. Raises OffsetMismatch, TextTooLarge, Fenced, or HttpError."""
        body = {"chapter": chapter, "section": section, "offset": offset, "text": text}
        if reset:
            body["reset"] = True
        if fence is not None:
            body["fence"] = fence
        try:
            return self._post(f"/api/ai/progress/{book_id}/text", body)["length"]
        except HttpError as error:
            refused = {"offset_mismatch": OffsetMismatch, "text_too_large": TextTooLarge, "fenced": Fenced}.get(error.code)
            if refused is None:
                raise
            raise refused(error.message, error.details.get("length")) from None

    def begin_section(self, book_id, chapter, section, fence=None):
        """Starts the section over (a reset); the server does not say the attempt."""
        self.append_text(book_id, chapter, section, 0, "", reset=True, fence=fence)

    def _post(self, path, body):
        request = urllib.request.Request(f"{self.base_url}{path}", data=json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if self.tenant_header:
            request.add_header("X-Tenant", self.tenant_header)  # with PUBLISH_TOKEN: the book's tenant
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)["data"]
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}").get("error", {})
            raise HttpError(error.code, body.get("code"), body.get("message"), body.get("details")) from None
# [end]


class HttpError(Exception):
    """A 4xx/5xx answer of the server: its status, `error.code`, `error.message` and `error.details` ({} when none)."""

    def __init__(self, status, code, message, details=None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}
