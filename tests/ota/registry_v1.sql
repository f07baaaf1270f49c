-- A fleet registry at schema version 1 (SQLite): the schema exactly as scpkit
-- made it before schema versioning (src/ota/registry.c v1_sqlite, the text
-- the registry then created), no schema_version table, and a few rows.
-- tests/ota/migrate.sh loads it and checks the upgrade.
CREATE TABLE IF NOT EXISTS device( id TEXT PRIMARY KEY, master TEXT NOT NULL, kdf TEXT NOT NULL, kvn INTEGER NOT NULL, tags TEXT NOT NULL DEFAULT '', next_master TEXT, next_kdf TEXT, next_kvn INTEGER, prev_master TEXT, prev_kdf TEXT, prev_kvn INTEGER, lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS campaign( name TEXT PRIMARY KEY, action INTEGER NOT NULL, params TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active', created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS job( id INTEGER PRIMARY KEY, campaign TEXT NOT NULL REFERENCES campaign(name), device TEXT NOT NULL REFERENCES device(id), state TEXT NOT NULL DEFAULT 'pending', step INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, reason TEXT, updated INTEGER NOT NULL DEFAULT 0, UNIQUE(campaign, device));
CREATE INDEX IF NOT EXISTS job_dev ON job(device, state);
CREATE TABLE IF NOT EXISTS event( id INTEGER PRIMARY KEY, time INTEGER NOT NULL, device TEXT, dialog TEXT, what TEXT NOT NULL, detail TEXT);
-- rows as scpkit before schema versioning wrote them
INSERT INTO device(id,master,kdf,kvn,tags,updated) VALUES('DEV-OLD','fleet:1','kdf3',1,'lab',1796600000000);
INSERT INTO device(id,master,kdf,kvn,tags,next_master,next_kdf,next_kvn,updated)
    VALUES('DEV-MID','fleet:1','kdf3',1,'','fleet2:1','kdf3',2,1796600000001);
INSERT INTO campaign(name,action,params,target,state,created) VALUES('old',1,'fleet2:1|kdf3|2','all','active',1796600000002);
INSERT INTO job(id,campaign,device,state,step,attempts,updated) VALUES(1,'old','DEV-OLD','pending',0,0,1796600000003);
INSERT INTO job(id,campaign,device,state,step,attempts,reason,updated) VALUES(2,'old','DEV-MID','running',1,2,'lost connection',1796600000004);
INSERT INTO event(id,time,device,dialog,what,detail) VALUES(1,1796600000005,'DEV-MID','0123456789ABCDEF0123456789ABCDEF','put-key-intent','fleet2:1');
