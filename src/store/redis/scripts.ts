/**
 * Lua scripts for the operations that must be atomic across gateway instances. Each script touches only keys that
 * share one hash tag, so it also runs on Redis Cluster; it returns a status string (`OK`, `EXISTS`, `NOTFOUND`,
 * `CONFLICT`, `DUP`) or data, never a Redis error, so connection failures and domain outcomes stay distinguishable.
 */

/** KEYS: device key, serial index, EK index, order zset. ARGV: id, json, serial, ek ('' = none), orderMember. */
export const DEVICE_CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'EXISTS' end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 'EXISTS' end
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[4]) == 1 then return 'EXISTS' end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[1]) end
redis.call('ZADD', KEYS[4], 0, ARGV[5])
return 'OK'
`;

/**
 * Compare-and-set update of one device. KEYS: device key, serial index, EK index.
 * ARGV: id, expectedVersion, newJson, oldSerial, newSerial, oldEk, newEk ('' = none).
 */
export const DEVICE_UPDATE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 'NOTFOUND' end
if cjson.decode(cur)['version'] ~= tonumber(ARGV[2]) then return 'CONFLICT' end
local owner = redis.call('HGET', KEYS[2], ARGV[5])
if owner and owner ~= ARGV[1] then return 'EXISTS' end
if ARGV[7] ~= '' then
  owner = redis.call('HGET', KEYS[3], ARGV[7])
  if owner and owner ~= ARGV[1] then return 'EXISTS' end
end
if ARGV[4] ~= ARGV[5] then redis.call('HDEL', KEYS[2], ARGV[4]) end
if ARGV[6] ~= '' and ARGV[6] ~= ARGV[7] then redis.call('HDEL', KEYS[3], ARGV[6]) end
redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], ARGV[7], ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[3])
return 'OK'
`;

/**
 * All-or-nothing bulk upsert by serial. KEYS: serial index, EK index, order zset. ARGV: key prefix for device keys,
 * then per row 8 fields: id, json, serial, newEk, expectedExistingId ('' = must not exist), expectedVersion,
 * oldEk, orderMember. Everything is checked before anything is written.
 */
export const DEVICE_UPSERT_MANY = `
local prefix = ARGV[1]
local n = (#ARGV - 1) / 8
local seenSerial, seenEk = {}, {}
for i = 0, n - 1 do
  local b = 2 + i * 8
  local id, serial, ek, expId, expVer = ARGV[b], ARGV[b+2], ARGV[b+3], ARGV[b+4], ARGV[b+5]
  if seenSerial[serial] then return 'EXISTS' end
  seenSerial[serial] = true
  local owner = redis.call('HGET', KEYS[1], serial)
  if expId == '' then
    if owner then return 'CONFLICT' end
    if redis.call('EXISTS', prefix .. id) == 1 then return 'EXISTS' end
  else
    if owner ~= expId then return 'CONFLICT' end
    local cur = redis.call('GET', prefix .. expId)
    if not cur or cjson.decode(cur)['version'] ~= tonumber(expVer) then return 'CONFLICT' end
  end
  if ek ~= '' then
    if seenEk[ek] then return 'EXISTS' end
    seenEk[ek] = true
    local ekOwner = redis.call('HGET', KEYS[2], ek)
    if ekOwner and ekOwner ~= id then return 'EXISTS' end
  end
end
for i = 0, n - 1 do
  local b = 2 + i * 8
  local id, json, serial, ek, expId, oldEk, member = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4], ARGV[b+6], ARGV[b+7]
  redis.call('SET', prefix .. id, json)
  redis.call('HSET', KEYS[1], serial, id)
  if oldEk ~= '' and oldEk ~= ek then redis.call('HDEL', KEYS[2], oldEk) end
  if ek ~= '' then redis.call('HSET', KEYS[2], ek, id) end
  if expId == '' then redis.call('ZADD', KEYS[3], 0, member) end
end
return 'OK'
`;

/** KEYS: token key. ARGV: deviceId, now. Returns the updated JSON, 'NOTFOUND' or 'CONFLICT'. */
export const TOKEN_SPEND = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 'NOTFOUND' end
local t = cjson.decode(cur)
if t['spentAt'] ~= cjson.null then return 'CONFLICT' end
if t['deviceId'] ~= ARGV[1] then return 'CONFLICT' end
if t['expiresAt'] <= tonumber(ARGV[2]) then return 'CONFLICT' end
-- Patch the stored text instead of re-encoding it: cjson would reformat the epoch-ms numbers.
local updated = string.gsub(cur, '"spentAt":null', '"spentAt":' .. ARGV[2], 1)
redis.call('SET', KEYS[1], updated, 'KEEPTTL')
return updated
`;

/** KEYS: key. ARGV: json, ttlGcMs, now, overwrite ('1'/'0'). */
export const NONCE_PUT = `
if ARGV[4] ~= '1' then
  local cur = redis.call('GET', KEYS[1])
  if cur and tonumber(cjson.decode(cur)['e']) > tonumber(ARGV[3]) then return 'EXISTS' end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'OK'
`;

/** KEYS: key. Returns the stored JSON and deletes it (GETDEL is 6.2+; this also runs on older servers). */
export const NONCE_CONSUME = `
local cur = redis.call('GET', KEYS[1])
if cur then redis.call('DEL', KEYS[1]) end
return cur
`;

/** KEYS: counter key. ARGV: ttlMs. */
export const RATE_HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

/** KEYS: cert key, sha index, device zset. ARGV: json, sha, serial, issuedAt. */
export const CERT_PUT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'EXISTS' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'EXISTS' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 'OK'
`;

/**
 * Read only. KEYS: sha index. ARGV: sha256, certificate key prefix, revocation key prefix (all in the {pki} slot).
 * Returns {certificate json, revocation json or ''}, or nil when no certificate has that fingerprint.
 */
export const CERT_WITH_REVOCATION = `
local serial = redis.call('HGET', KEYS[1], ARGV[1])
if not serial then return false end
local cert = redis.call('GET', ARGV[2] .. serial)
if not cert then return false end
local rev = redis.call('GET', ARGV[3] .. serial)
return {cert, rev or ''}
`;

/** KEYS: revocation key, order zset, seq counter, generation counter. ARGV: json, serial. */
export const REVOKE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'EXISTS' end
local seq = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], seq, ARGV[2])
redis.call('INCR', KEYS[4])
return 'OK'
`;

/** KEYS: token key, names hash, order zset. ARGV: json, name, id, orderMember. */
export const API_TOKEN_CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'EXISTS' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'EXISTS' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[4])
return 'OK'
`;

/** KEYS: token key. ARGV: now. Keeps the first revocation time. */
export const API_TOKEN_REVOKE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 'NOTFOUND' end
local updated = string.gsub(cur, '"revokedAt":null', '"revokedAt":' .. ARGV[1], 1)
redis.call('SET', KEYS[1], updated)
return 'OK'
`;

/**
 * Compare-and-set append of a batch to the audit log.
 * KEYS: head, entries hash, event-id hash, first-seq key, all-entries time index.
 * ARGV: index key prefix, expected head as `seq:hash` ('' = empty log), entry count, then per entry 12 fields:
 *   seq, eventId, time, prevHash, hash, json, then the indexed values deviceId, user, reason, concentrator, type,
 *   decision ('' = none). The head is stored as `seq:hash` text so the compare is an exact string compare.
 */
export const AUDIT_APPEND = `
local ixp = ARGV[1]
local head = redis.call('GET', KEYS[1])
if (head or '') ~= ARGV[2] then return 'CONFLICT' end
local n = tonumber(ARGV[3])
local prevSeq, prevHash = 0, nil
if head then
  local sep = string.find(head, ':', 1, true)
  prevSeq = tonumber(string.sub(head, 1, sep - 1))
  prevHash = string.sub(head, sep + 1)
end
for i = 0, n - 1 do
  local b = 4 + i * 12
  if tonumber(ARGV[b]) ~= prevSeq + 1 then return 'CONFLICT' end
  if prevHash and ARGV[b+3] ~= prevHash then return 'CONFLICT' end
  if redis.call('HEXISTS', KEYS[3], ARGV[b+1]) == 1 then return 'DUP' end
  prevSeq = tonumber(ARGV[b])
  prevHash = ARGV[b+4]
end
local member
for i = 0, n - 1 do
  local b = 4 + i * 12
  local seq, eventId, time = ARGV[b], ARGV[b+1], ARGV[b+2]
  member = string.format('%016d', tonumber(seq))
  redis.call('HSET', KEYS[2], seq, ARGV[b+5])
  redis.call('HSET', KEYS[3], eventId, seq)
  redis.call('ZADD', KEYS[5], time, member)
  local fields = { 'device', 'user', 'reason', 'concentrator', 'type', 'decision' }
  for f = 1, 6 do
    local v = ARGV[b + 5 + f]
    if v ~= '' then redis.call('ZADD', ixp .. fields[f] .. ':' .. v, time, member) end
  end
end
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], ARGV[4]) end
redis.call('SET', KEYS[1], string.format('%d', prevSeq) .. ':' .. prevHash)
return 'OK'
`;
