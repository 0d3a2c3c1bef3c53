//! The two migration folders (`migrations/sqlite`, `migrations/postgres`) must end with the
//! same schema: the same tables, columns (type class and nullability), primary keys, indexes
//! and foreign keys. Each backend is migrated from scratch and read back from its catalog.
//!
//! Needs PostgreSQL (`TEST_POSTGRES_URL`, else `TEST_DATABASE_URL` when it is a PostgreSQL
//! URL, else the local default): under `CI=true` an unreachable server fails the test;
//! elsewhere the test says why it is skipped.

use std::collections::{BTreeMap, BTreeSet};

use auth_store::{Store, StoreOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// What the schema is made of, one line per fact ("column users.email text not null", ...),
/// so that a drift reads as the lines only one backend has.
type Facts = BTreeSet<String>;

/// A declared type as the class of values it holds.
fn type_class(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    let class = if t.contains("int") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("blob") || t == "bytea" {
        "blob"
    } else if t.starts_with("bool") {
        "boolean"
    } else if ["real", "floa", "doub", "numeric", "decimal"]
        .iter()
        .any(|r| t.contains(r))
    {
        "real"
    } else {
        return format!("other ({t})");
    };
    class.to_owned()
}

fn column(table: &str, name: &str, declared: &str, not_null: bool) -> String {
    let null = if not_null { "not null" } else { "null" };
    format!("column {table}.{name} {} {null}", type_class(declared))
}

fn index(table: &str, name: &str, columns: &str, unique: bool, partial: bool) -> String {
    let unique = if unique { " unique" } else { "" };
    let partial = if partial { " partial" } else { "" };
    format!("index {name} on {table} ({columns}){unique}{partial}")
}

/// A UNIQUE constraint, by its columns: SQLite names the index backing it
/// `sqlite_autoindex_<table>_<n>` whatever the constraint's name.
fn unique(table: &str, columns: &str) -> String {
    format!("unique {table} ({columns})")
}

fn foreign_key(table: &str, from: &str, to_table: &str, to: &str, on_delete: &str) -> String {
    let on_delete = on_delete.to_ascii_lowercase();
    format!("foreign key {table} ({from}) references {to_table} ({to}) on delete {on_delete}")
}

/// SQLite: the tables of the schema (`m`, sqlx's own and SQLite's left out), each joined with
/// what a table-valued pragma says of it.
fn each_table(pragma: &str) -> String {
    format!(
        "sqlite_master m JOIN {pragma} WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
         AND m.name <> '_sqlx_migrations'"
    )
}

async fn sqlite_facts(pool: &AnyPool) -> Facts {
    let mut facts = Facts::new();
    let rows = sqlx::query(&format!(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk FROM {} ORDER BY m.name, p.pk",
        each_table("pragma_table_info(m.name) p")
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    let mut primary_keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let (table, name): (String, String) = (row.get(0), row.get(1));
        facts.insert(format!("table {table}"));
        facts.insert(column(
            &table,
            &name,
            &row.get::<String, _>(2),
            row.get::<i64, _>(3) != 0,
        ));
        if row.get::<i64, _>(4) > 0 {
            primary_keys.entry(table).or_default().push(name);
        }
    }
    for (table, columns) in &primary_keys {
        facts.insert(format!("primary key {table} ({})", columns.join(",")));
    }

    let indexes = sqlx::query(&format!(
        "SELECT m.name, l.name, l.\"unique\", l.origin, l.partial FROM {}",
        each_table("pragma_index_list(m.name) l")
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    for row in indexes {
        let (table, name, origin): (String, String, String) = (row.get(0), row.get(1), row.get(3));
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                .bind(&name)
                .fetch_all(pool)
                .await
                .unwrap();
        let columns = columns.join(",");
        match origin.as_str() {
            // The primary key's own index: compared as the primary key above.
            "pk" => {}
            "u" => {
                facts.insert(unique(&table, &columns));
            }
            _ => {
                let (is_unique, partial) = (row.get::<i64, _>(2) != 0, row.get::<i64, _>(4) != 0);
                facts.insert(index(&table, &name, &columns, is_unique, partial));
            }
        }
    }

    let keys = sqlx::query(&format!(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_delete FROM {} \
         ORDER BY m.name, f.id, f.seq",
        each_table("pragma_foreign_key_list(m.name) f")
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    // (table, id) -> (referenced table, on delete, [(from, to)])
    type Key = (String, String, Vec<(String, Option<String>)>);
    let mut grouped: BTreeMap<(String, i64), Key> = BTreeMap::new();
    for row in keys {
        let key = grouped
            .entry((row.get(0), row.get(1)))
            .or_insert_with(|| (row.get(2), row.get(5), Vec::new()));
        key.2.push((row.get(3), row.get(4)));
    }
    for ((table, _), (to_table, on_delete, pairs)) in grouped {
        let from: Vec<&str> = pairs.iter().map(|(f, _)| f.as_str()).collect();
        // A reference without columns is to the referenced table's primary key.
        let to = match pairs
            .iter()
            .map(|(_, t)| t.clone())
            .collect::<Option<Vec<_>>>()
        {
            Some(to) => to,
            None => primary_keys.get(&to_table).cloned().unwrap_or_default(),
        };
        facts.insert(foreign_key(
            &table,
            &from.join(","),
            &to_table,
            &to.join(","),
            &on_delete,
        ));
    }
    facts
}

/// The columns of an index or constraint (`keys`, an int2 array of attribute numbers of
/// `relation`), in order, comma-separated.
fn pg_columns(keys: &str, relation: &str) -> String {
    format!(
        "array_to_string(ARRAY(SELECT a.attname::text FROM unnest({keys}::int2[]) \
         WITH ORDINALITY AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = {relation} \
         AND a.attnum = k.attnum ORDER BY k.ord), ',')"
    )
}

async fn postgres_facts(pool: &AnyPool, schema: &str) -> Facts {
    let mut facts = Facts::new();
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text = 'NO' \
         FROM information_schema.columns WHERE table_schema = $1 \
         AND table_name <> '_sqlx_migrations'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap();
    for row in rows {
        let table: String = row.get(0);
        facts.insert(format!("table {table}"));
        facts.insert(column(
            &table,
            &row.get::<String, _>(1),
            &row.get::<String, _>(2),
            row.get(3),
        ));
    }

    let indexes = sqlx::query(&format!(
        "SELECT t.relname::text, i.relname::text, x.indisunique, x.indisprimary, \
         x.indpred IS NOT NULL, \
         EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype = 'u'), \
         {} \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = $1 AND t.relname <> '_sqlx_migrations'",
        pg_columns("x.indkey", "t.oid")
    ))
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap();
    for row in indexes {
        let (table, name, columns): (String, String, String) = (row.get(0), row.get(1), row.get(6));
        let (is_unique, primary, partial, constraint): (bool, bool, bool, bool) =
            (row.get(2), row.get(3), row.get(4), row.get(5));
        if primary {
            facts.insert(format!("primary key {table} ({columns})"));
        } else if constraint {
            facts.insert(unique(&table, &columns));
        } else {
            facts.insert(index(&table, &name, &columns, is_unique, partial));
        }
    }

    let keys = sqlx::query(&format!(
        "SELECT t.relname::text, r.relname::text, c.confdeltype::text, {}, {} \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = $1",
        pg_columns("c.conkey", "c.conrelid"),
        pg_columns("c.confkey", "c.confrelid")
    ))
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap();
    for row in keys {
        let on_delete = match row.get::<String, _>(2).as_str() {
            "a" => "no action",
            "r" => "restrict",
            "c" => "cascade",
            "n" => "set null",
            "d" => "set default",
            other => panic!("unknown confdeltype {other}"),
        };
        facts.insert(foreign_key(
            &row.get::<String, _>(0),
            &row.get::<String, _>(3),
            &row.get::<String, _>(1),
            &row.get::<String, _>(4),
            on_delete,
        ));
    }
    facts
}

/// The PostgreSQL server to migrate a fresh schema on, or None (said why) outside CI.
async fn postgres() -> Option<(String, AnyConnection)> {
    let url = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .or_else(|| {
            std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|u| u.starts_with("postgres"))
        })
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    match AnyConnection::connect(&url).await {
        Ok(conn) => Some((url, conn)),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is required under CI=true; {url} is unreachable: {e}"
            );
            eprintln!("skipping: PostgreSQL at {url} is unreachable ({e}); set TEST_POSTGRES_URL");
            None
        }
    }
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_columns_and_indexes() {
    sqlx::any::install_default_drivers();
    let Some((url, mut admin)) = postgres().await else {
        return;
    };

    let path = std::env::temp_dir().join(format!("auth-migrations-{}.db", uuid::Uuid::now_v7()));
    let store = Store::connect(
        &format!("sqlite://{}", path.display()),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let sqlite = sqlite_facts(store.pool()).await;
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let schema = format!("migrations_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::connect(&store_url, &StoreOptions::default())
        .await
        .unwrap();
    let migrated = store.migrate().await;
    let postgres = match &migrated {
        Ok(()) => postgres_facts(store.pool(), &schema).await,
        Err(_) => Facts::new(),
    };
    store.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    migrated.unwrap();

    // Not empty by accident (a catalog query that matched nothing would compare equal).
    for expected in [
        "table users",
        "column users.email_normalized text not null",
        "primary key user_roles (user_id,role_name)",
        "unique users (tenant_id,email_normalized)",
        "index signing_keys_one_active on signing_keys (state) unique partial",
        "foreign key refresh_tokens (session_id) references sessions (id) on delete cascade",
    ] {
        assert!(
            sqlite.contains(expected),
            "SQLite lacks {expected:?}: {sqlite:#?}"
        );
    }
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the migrations drifted apart\nonly on SQLite: {only_sqlite:#?}\nonly on PostgreSQL: \
         {only_postgres:#?}"
    );
}
