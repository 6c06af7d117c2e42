-- 0006: provisional claims. A claim taken before a write (PreToolUse) is provisional until the
-- write is seen done (PostToolUse): Claude Code asks the user for permission after PreToolUse,
-- and a refused write must not keep the file from other agents. A provisional claim is freed on
-- PermissionDenied / PostToolUseFailure and lapses after `locks.provisional_secs`.
-- Headless (`claude -p`) refusals send neither (2.1.197 and 2.1.332 alike): the holder's next
-- PreToolUse from the same agent (Claude Code runs writes one at a time) frees it too, so the
-- agent that took it is kept beside it ('' for the main agent, else the subagent's agent_id).
ALTER TABLE claims ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN provisional_agent TEXT;
