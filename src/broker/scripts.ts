/**
 * Server-side scripts of the Redis broker. Each runs atomically, so versions are assigned
 * where the state lives and the snapshot claim is taken by one process at a time.
 * docs/protocol.md documents them for publishers in other languages.
 */

/**
 * KEYS: state key, dirty set, [fence key]. ARGV: expected version ('' = none held), state JSON,
 * TTL seconds, channel, bookId, [fence ('' = none)], [publish command: 'SPUBLISH' on a
 * cluster with sharded pub/sub, else PUBLISH], [partition feed channel ('' = none)].
 * Returns 1 when committed, {0, held JSON or ''} when the held version differs, or -1 when
 * the fence is lower than the book's (its writer was superseded). A committed fence is kept
 * as the book's, with the state's TTL. On a cluster every key and channel is in one slot.
 */
export const COMMIT = `
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
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[5])
local publish = 'PUBLISH'
if ARGV[7] == 'SPUBLISH' then publish = 'SPUBLISH' end
redis.call(publish, ARGV[4], ARGV[2])
if ARGV[8] and ARGV[8] ~= '' then redis.call(publish, ARGV[8], ARGV[2]) end
if fence and fence ~= '' then redis.call('SET', KEYS[3], fence, 'EX', ARGV[3]) end
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
