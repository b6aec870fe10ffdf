-- Every strike id with its reason, read in one step (a strike and its reason never disagree).
--
-- KEYS[1]  the set of strike ids;  KEYS[2] the reasons hash (strike id -> reason)
-- Returns {ids, {id1, reason1, id2, reason2, ...}}; a strike without a reason has no pair (a
-- strike stored before reasons existed, or added without one).
return {redis.call('SMEMBERS', KEYS[1]), redis.call('HGETALL', KEYS[2])}
