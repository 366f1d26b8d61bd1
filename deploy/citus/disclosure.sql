-- Disclosure on Citus (docs/citus.md): run once on the coordinator, as the owner of the
-- `disclosure` schema, after the service's migrations have run and before the feed flows.
-- Every table of the schema is named here once; tests/integration/disclosure/test_citus_keys.py
-- checks that against the migrated schema and its keys.

-- Small tables every node reads locally: the decisions' records, the registry, the platform
-- key. Reference first: the holds' foreign key points at cases.
SELECT create_reference_table('disclosure.cases');
SELECT create_reference_table('disclosure.packages');
SELECT create_reference_table('disclosure.notices');
SELECT create_reference_table('disclosure.withdrawals');
SELECT create_reference_table('disclosure.authorities');
SELECT create_reference_table('disclosure.authority_keys');
SELECT create_reference_table('disclosure.platform_key');

-- The subscriber store and the holds on it, distributed by account and co-located: one
-- account's rows of every table are on one shard, so a lookup by account and the retention
-- job's copy of held sessions run on that shard alone. `sessions` is partitioned by week; its
-- partitions are distributed with it, and those the retention job attaches later too.
SELECT create_distributed_table('disclosure.accounts', 'account_id');
SELECT create_distributed_table('disclosure.phone_changes', 'account_id', colocate_with => 'disclosure.accounts');
SELECT create_distributed_table('disclosure.username_changes', 'account_id', colocate_with => 'disclosure.accounts');
SELECT create_distributed_table('disclosure.sessions', 'account_id', colocate_with => 'disclosure.accounts');
SELECT create_distributed_table('disclosure.held_sessions', 'account_id', colocate_with => 'disclosure.accounts');
SELECT create_distributed_table('disclosure.holds', 'account_id', colocate_with => 'disclosure.accounts');

-- The identifiers' directory, distributed by the identifier's value: a lookup by phone number or
-- username reads the one shard holding the value for the accounts that held it, then reads each
-- of those accounts on its own shard. Not co-located with accounts: it is never joined with them.
SELECT create_distributed_table('disclosure.identifier_holders', 'value', colocate_with => 'none');

-- On the coordinator only: the audit chain (appends are serialised by one advisory lock),
-- the runtime's inbox, outbox and dead letters (written in the same transaction as the
-- distributed rows; Citus commits both with two-phase commit), the migrations' record.
SELECT citus_add_local_table_to_metadata('disclosure.audit_log');
SELECT citus_add_local_table_to_metadata('disclosure.audit_chain');
SELECT citus_add_local_table_to_metadata('disclosure.inbox');
SELECT citus_add_local_table_to_metadata('disclosure.outbox');
SELECT citus_add_local_table_to_metadata('disclosure.outbox_refused');
SELECT citus_add_local_table_to_metadata('disclosure.dead_letters');
SELECT citus_add_local_table_to_metadata('disclosure.schema_migrations');
