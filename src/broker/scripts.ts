/**
 * Server-side scripts of the Redis broker. Each runs atomically, so versions are assigned
 * where the state lives and the snapshot claim is taken by one process at a time.
 * docs/protocol.md prints them for publishers in other languages, and clients/python carries
 * COMMIT, BEGIN_SECTION and APPEND_TEXT (`npm run docs:embed`; test/clients/embed.test.ts keeps them equal).
 */
import { DEFAULT_TERMINAL_TTL_SECONDS } from '../config.js';
import { MAX_COUNT, MAX_ERROR_LENGTH, MAX_MESSAGE_LENGTH, MAX_TENANT_LENGTH, STATUSES, STEPS } from '../progress/schema.js';

/** The largest integer JSON numbers keep exactly (zod's int()). */
const MAX_INTEGER = Number.MAX_SAFE_INTEGER;

const luaSet = (names: readonly string[]) => `{ ${names.map((n) => `${n} = true`).join(', ')} }`;

/**
 * The checks of BookProgressSchema (src/progress/schema.ts) a script can make cheaply, as a Lua
 * function: the reason a state JSON is one the server would ignore, or nil and the state's version. Lengths count UTF-16
 * code units, as JavaScript does; a lone surrogate escape fails cjson's decoding. Unknown fields
 * pass (the server drops them).
 */
const STATE_PROBLEM = `
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
      local c = string.find(json, '["\\\\]', e)
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
    local _, lead = string.gsub(t, '[^\\128-\\191]', '')
    local _, astral = string.gsub(t, '[\\240-\\247]', '')
    return lead + astral
  end
  local function text(name, max, optional)
    local v = s[name]
    if v == nil and optional then return nil end
    if type(v) ~= 'string' or (#v > max and units(v) > max) then return name .. ' must be a string of at most ' .. max .. ' characters' end
    if string.find(v, '%z') then return name .. ' must not contain NUL' end
  end
  if s.bookId ~= bookId then return 'bookId must be the id of the book' end
  if not (${luaSet(STATUSES)})[s.status] then return 'status must be one of ${STATUSES.join(' ')}' end
  if not (${luaSet(STEPS)})[s.generationStep] then return 'generationStep must be one of ${STEPS.join(' ')}' end
  local problem = integer('currentChapter', 0, ${MAX_COUNT}) or integer('totalChapters', 0, ${MAX_COUNT})
    or integer('currentSection', 0, ${MAX_COUNT}) or integer('totalSections', 0, ${MAX_COUNT})
    or text('message', ${MAX_MESSAGE_LENGTH}) or text('error', ${MAX_ERROR_LENGTH}, true)
    or integer('timestamp', 0, ${MAX_INTEGER}) or integer('startTime', 0, ${MAX_INTEGER}, true)
    or integer('estimatedEndTime', 0, ${MAX_INTEGER}, true) or integer('estimatedEndTimeLate', 0, ${MAX_INTEGER}, true)
    or integer('version', 1, ${MAX_INTEGER})
  if problem then return problem end
  if s.currentChapter > s.totalChapters then return 'currentChapter must not exceed totalChapters' end
  if s.currentSection > s.totalSections then return 'currentSection must not exceed totalSections' end
  local p = s.overallProgress
  if type(p) ~= 'number' or not (p >= 0 and p <= 100) then return 'overallProgress must be a number from 0 to 100' end
  local t = s.tenant
  if t ~= nil and (type(t) ~= 'string' or #t == 0 or (#t > ${MAX_TENANT_LENGTH} and units(t) > ${MAX_TENANT_LENGTH}) or string.find(t, '[%z\\1-\\31\\127]')) then
    return 'tenant must be 1-${MAX_TENANT_LENGTH} characters without control characters'
  end
  local last = string.match(string.sub(json, -40), '"version"[ \\t\\r\\n]*:[ \\t\\r\\n]*(%d+)[ \\t\\r\\n]*}[ \\t\\r\\n]*$')
  if tonumber(last) ~= s.version then return 'version must be the last field' end
  return nil, s.version, s.status
end
`;

/**
 * KEYS: state key, dirty set, [fence key], [text meta key]. ARGV: expected version ('' = none
 * held), state JSON, TTL seconds, channel, bookId, [fence ('' = none)], [publish command:
 * 'SPUBLISH' on a cluster with sharded pub/sub, else PUBLISH], [partition feed channel ('' =
 * none)], [terminal TTL seconds ('' = 3600)], [the book's section key prefix].
 * Returns 1 when committed, {0, held JSON or ''} when the held version differs, or -1 when
 * the fence is lower than the book's (its writer was superseded). A committed fence is kept
 * as the book's, with the state's TTL. A finished state (COMPLETE, ERROR) is kept for the
 * terminal TTL instead, and with a text meta key the book's live text (the sections the meta
 * hash names, and the hash) expires no later than it. On a cluster every key and channel is in one slot.
 * A state the server would ignore (see STATE_PROBLEM), or whose version is not above the held
 * one, is refused with an error reply `INVALID_STATE <reason>`, changing nothing.
 */
export const COMMIT = `${STATE_PROBLEM}
local problem, version, status = stateProblem(ARGV[2], ARGV[5])
if problem then return redis.error_reply('INVALID_STATE ' .. problem) end
local fence = ARGV[6]
if fence and fence ~= '' then
  if tonumber(redis.call('GET', KEYS[3]) or '0') > tonumber(fence) then return -1 end
end
local tail = redis.call('GETRANGE', KEYS[1], -40, -1)
-- A state ends with its version (ours always do): read it from the last bytes, without copying
-- or decoding the whole JSON.
local heldVersion = string.match(tail, '"version"[ \\t\\r\\n]*:[ \\t\\r\\n]*(%d+)[ \\t\\r\\n]*}[ \\t\\r\\n]*$') or ''
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
  if not ttl or ttl == '' then ttl = '${DEFAULT_TERMINAL_TTL_SECONDS}' end
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
`;

/**
 * KEYS: dirty set, claimed set, owner key, last round key. ARGV: owner, lease ms, round ('' = none).
 * Returns the claimed books, or nil while another owner's lease runs or the round was taken.
 * Books of an expired claim go back to the dirty set first, so a process that died
 * mid-snapshot loses nothing.
 */
export const CLAIM_DIRTY = `
if ARGV[3] ~= '' then
  local last = tonumber(redis.call('GET', KEYS[4]) or '-1')
  if tonumber(ARGV[3]) <= last then return nil end
end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return nil end
if ARGV[3] ~= '' then redis.call('SET', KEYS[4], ARGV[3], 'EX', 86400) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SUNIONSTORE', KEYS[1], KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('RENAME', KEYS[1], KEYS[2])
return redis.call('SMEMBERS', KEYS[2])
`;

/**
 * KEYS: dirty set, claimed set, owner key. ARGV: owner, '1' when written, '0' to give the books back.
 * Returns 1, or 0 when the owner had lost its lease (then the next claim takes the books back).
 */
export const SETTLE_CLAIM = `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SUNIONSTORE', KEYS[1], KEYS[1], KEYS[2])
end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`;

/**
 * Live text (text-log.ts, docs/protocol.md "Live text"). A section's text is the string KEYS[1],
 * its attempts and the section being written are fields of the book's hash KEYS[2]
 * (`<chapter>:<section>` = attempt, `current` = `<chapter>:<section>`); KEYS[3] is the book's
 * fence key, checked as COMMIT checks it and kept at a passing fence. On a cluster every key and
 * channel is in the book's slot. Announcements are JSON:
 * {"bookId","chapter","section","attempt","offset","text"[,"reset":true]}.
 */
const TEXT_PRELUDE = `
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
`;

/**
 * KEYS: section text, book's text hash, fence key. ARGV: chapter, section, fence ('' = none),
 * TTL seconds, channel, bookId, publish command ('SPUBLISH' on a cluster with sharded pub/sub),
 * partition feed channel ('' = none). Starts the section (attempt 1), or starts it over when its
 * text is held (attempt + 1, announced as a reset: offset 0, text ''); attempts only go up, also
 * past an expired text (the hash keeps the attempt). Returns {1, attempt}, or
 * {-1} when the fence is lower than the book's.
 */
export const BEGIN_SECTION = `${TEXT_PRELUDE}
-- Attempts only go up: after the section's text expired, its attempt is still in the hash.
local held = redis.call('EXISTS', KEYS[1]) == 1
local attempt = tonumber(redis.call('HGET', KEYS[2], field) or '0') + 1
redis.call('SET', KEYS[1], '')
keep(attempt)
if held then announce(attempt, 0, '', true) end
return {1, attempt}
`;

/**
 * KEYS: as BEGIN_SECTION. ARGV: as BEGIN_SECTION, then offset, text, the size limit in bytes.
 * Appends `text` when `offset` is the section's length (in bytes) and the result stays within
 * the limit, and announces it. Returns {1, new length}, {0, length} when the offset is not the
 * length, {2, length} when the text would pass the limit, or {-1} when fenced. An append that
 * starts a section whose text expired starts its next attempt.
 */
export const APPEND_TEXT = `${TEXT_PRELUDE}
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
`;

/**
 * KEYS: section text, book's text hash. ARGV: chapter, section, from (a byte offset). Returns
 * {attempt, length, text from the offset}, or nil when the section's text is not held.
 */
export const READ_TEXT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local length = redis.call('STRLEN', KEYS[1])
local from = tonumber(ARGV[3]) or 0
local text = ''
if from < length then text = redis.call('GETRANGE', KEYS[1], math.max(from, 0), -1) end
local field = string.format('%d:%d', tonumber(ARGV[1]), tonumber(ARGV[2]))
local attempt = tonumber(redis.call('HGET', KEYS[2], field) or '1')
return {attempt, length, text}
`;
