/*
 * pool.c: HTTP Basic credentials checked by logging in to the database as that role,
 * and a bounded pool of those roles' connections.
 *
 * The database decides who may log in (pg_hba.conf, LOGIN, passwords) and what each
 * role may do (pg_dispatch's grants and checks): dispatch-web holds no user list of
 * its own.  A login is reused while it is in the pool; a slot remembers the role and
 * a salted SHA-256 of (role, password), never the password, and is only handed to a
 * request carrying the same pair (compared in constant time).  A slot is logged in
 * afresh after --pool-max-age seconds, so a changed password or a revoked LOGIN takes
 * effect within that time.  Guessing is bounded: after --max-login-failures failed
 * logins for one role in a minute, that role is refused (429) until the minute ends
 * without asking the database.  A server that lets a role in without a password
 * (trust, peer) would let anyone be anyone, so such a login is refused too, and so
 * is an empty password (libpq would fill it in from the daemon's own .pgpass).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "web.h"

#define KEY_LEN 32
#define MAX_USER 63
#define MAX_PASSWORD 1024
#define FAIL_SLOTS 256
#define WAIT_FOR_SLOT_S 5

typedef struct Slot
{
	PGconn	   *conn;
	char		user[MAX_USER + 1];
	unsigned char key[KEY_LEN];
	time_t		born;
	bool		used;			/* reserved or holding a connection */
	bool		busy;			/* lent to a request */
} Slot;

typedef struct Failures
{
	unsigned char user[KEY_LEN];	/* salted hash of the role name */
	time_t		window;			/* start of the minute counted */
	int			count;
} Failures;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static Slot *slots;
static Failures failures[FAIL_SLOTS];
static unsigned char salt[KEY_LEN];

static void hash_key(const char *user, const char *password, unsigned char *out);
static Failures *failures_of(const unsigned char *user_hash, time_t now);
static Slot *take_slot(const char *user, const unsigned char *key, time_t now,
					   PGconn **stale);
static PGconn *login(const char *user, const char *password);

/* Allocates the slots and draws the salt; exits when either fails. */
void
pool_init(void)
{
	slots = calloc(web_config.max_db_connections, sizeof(Slot));
	if (slots == NULL || RAND_bytes(salt, sizeof(salt)) != 1)
	{
		fprintf(stderr, "dispatch-web: could not set up the connection pool\n");
		exit(1);
	}
}

/* Writes SHA-256(salt, user, NUL, password) to out (KEY_LEN bytes); password may be
 * NULL (the key of the role name alone). */
static void
hash_key(const char *user, const char *password, unsigned char *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = KEY_LEN;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
		EVP_DigestUpdate(md, salt, sizeof(salt)) != 1 ||
		EVP_DigestUpdate(md, user, strlen(user) + 1) != 1 ||
		(password && EVP_DigestUpdate(md, password, strlen(password)) != 1) ||
		EVP_DigestFinal_ex(md, out, &len) != 1)
	{
		fprintf(stderr, "dispatch-web: SHA-256 failed\n");
		abort();
	}
	EVP_MD_CTX_free(md);
}

/* Returns the failure counter of a role (lock held), reusing the stalest entry for a
 * role not counted yet; a counter whose minute is over starts again. */
static Failures *
failures_of(const unsigned char *user_hash, time_t now)
{
	Failures   *f = &failures[user_hash[0] % FAIL_SLOTS];

	if (memcmp(f->user, user_hash, KEY_LEN) != 0)
	{
		memcpy(f->user, user_hash, KEY_LEN);
		f->count = 0;
		f->window = now;
	}
	if (now - f->window >= 60)
	{
		f->count = 0;
		f->window = now;
	}
	return f;
}

/* Returns a slot for the request (lock held): an idle login of the same role and
 * password, else a free slot, else the stalest idle one (its connection in *stale, to
 * be closed by the caller), else NULL.  A slot found with a connection is busy and
 * connected; any other is reserved and empty. */
static Slot *
take_slot(const char *user, const unsigned char *key, time_t now, PGconn **stale)
{
	Slot	   *empty = NULL,
			   *idle = NULL;

	for (int i = 0; i < web_config.max_db_connections; i++)
	{
		Slot	   *s = &slots[i];

		if (!s->used)
		{
			if (empty == NULL)
				empty = s;
			continue;
		}
		if (s->busy)
			continue;
		if (now - s->born < web_config.pool_max_age_s && strcmp(s->user, user) == 0 &&
			CRYPTO_memcmp(s->key, key, KEY_LEN) == 0)
		{
			s->busy = true;
			return s;
		}
		if (idle == NULL || s->born < idle->born)
			idle = s;
	}
	if (empty == NULL && idle != NULL)
	{
		*stale = idle->conn;
		idle->conn = NULL;
		empty = idle;
	}
	if (empty != NULL)
	{
		empty->used = true;
		empty->busy = true;
		empty->conn = NULL;
	}
	return empty;
}

/* Logs in as user; returns the connection, or NULL (closed) when it failed or the
 * server did not ask for the password. */
static PGconn *
login(const char *user, const char *password)
{
	char		options[128];
	const char *keys[] = {"dbname", "user", "password", "passfile", "fallback_application_name",
	"client_encoding", "options", "connect_timeout", NULL};
	const char *values[] = {web_config.conninfo, user, password, "/dev/null", "dispatch-web",
	"UTF8", options, "10", NULL};
	PGconn	   *conn;

	snprintf(options, sizeof(options), "-c statement_timeout=%d%s",
			 web_config.statement_timeout_ms,
			 web_config.read_only ? " -c default_transaction_read_only=on" : "");
	conn = PQconnectdbParams(keys, values, 1);
	if (conn != NULL && PQstatus(conn) == CONNECTION_OK && !PQconnectionUsedPassword(conn))
	{
		fprintf(stderr, "dispatch-web: refused role \"%s\": the server let it in without "
				"a password (pg_hba.conf must ask dispatch-web's logins for one)\n", user);
		PQfinish(conn);
		return NULL;
	}
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Lends *conn, a connection logged in as user with password; returns why not. */
PoolStatus
pool_acquire(const char *user, const char *password, PGconn **conn)
{
	unsigned char key[KEY_LEN],
				who[KEY_LEN];
	time_t		now = time(NULL);
	struct timespec until;
	Slot	   *slot = NULL;
	PGconn	   *stale = NULL;
	const char *ping_keys[] = {"dbname", "connect_timeout", NULL};
	const char *ping_values[] = {web_config.conninfo, "10", NULL};

	*conn = NULL;
	if (user == NULL || password == NULL)
		return POOL_NO_CREDENTIALS;
	/* An empty password would make libpq look for one in the daemon's own .pgpass or
	 * PGPASSWORD: a login as the daemon's role for anyone who sends none. */
	if (user[0] == '\0' || password[0] == '\0' || strlen(user) > MAX_USER ||
		strlen(password) > MAX_PASSWORD)
		return POOL_AUTH_FAILED;
	hash_key(user, password, key);
	hash_key(user, NULL, who);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_FOR_SLOT_S;

	pthread_mutex_lock(&lock);
	if (failures_of(who, now)->count >= web_config.max_login_failures)
	{
		pthread_mutex_unlock(&lock);
		return POOL_LOCKED;
	}
	while ((slot = take_slot(user, key, now, &stale)) == NULL)
	{
		if (pthread_cond_timedwait(&freed, &lock, &until) != 0)
		{
			pthread_mutex_unlock(&lock);
			return POOL_BUSY;
		}
	}
	pthread_mutex_unlock(&lock);
	PQfinish(stale);
	if (slot->conn != NULL)
	{
		*conn = slot->conn;
		return POOL_OK;
	}

	slot->conn = login(user, password);
	pthread_mutex_lock(&lock);
	if (slot->conn == NULL)
	{
		slot->used = slot->busy = false;
		failures_of(who, now)->count++;
		pthread_cond_signal(&freed);
		pthread_mutex_unlock(&lock);
		if (PQpingParams(ping_keys, ping_values, 1) != PQPING_OK)
			return POOL_DOWN;
		fprintf(stderr, "dispatch-web: failed login as \"%s\"\n", user);
		return POOL_AUTH_FAILED;
	}
	failures_of(who, now)->count = 0;
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	memcpy(slot->key, key, KEY_LEN);
	slot->born = now;
	pthread_mutex_unlock(&lock);
	*conn = slot->conn;
	return POOL_OK;
}

/* Takes conn back; one that broke or was left inside a transaction is closed. */
void
pool_release(PGconn *conn)
{
	bool		keep = PQstatus(conn) == CONNECTION_OK &&
		PQtransactionStatus(conn) == PQTRANS_IDLE;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < web_config.max_db_connections; i++)
	{
		if (slots[i].conn != conn)
			continue;
		slots[i].busy = false;
		if (!keep)
		{
			slots[i].used = false;
			slots[i].conn = NULL;
		}
		break;
	}
	pthread_cond_signal(&freed);
	pthread_mutex_unlock(&lock);
	if (!keep)
		PQfinish(conn);
}

/* Closes every pooled connection (the daemon has stopped serving). */
void
pool_shutdown(void)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < web_config.max_db_connections; i++)
	{
		PQfinish(slots[i].conn);
		slots[i].conn = NULL;
		slots[i].used = false;
	}
	pthread_mutex_unlock(&lock);
}
