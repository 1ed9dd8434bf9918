/*
 * pg_dispatch.c: module entry point.  _PG_init defines the dispatch.* GUCs and
 * reserves the prefix, hooks the scheduler's shared memory (scheduler.c) and
 * registers the launcher background worker (launcher.c).  The module must be in
 * shared_preload_libraries: background workers and shared memory can only be
 * set up by the postmaster.
 *
 * Every setting is defined here, in one place.  The SQL functions read theirs
 * with current_setting(); eight are also read from C (declared in pg_dispatch.h):
 * dispatch.database (where the workers connect), dispatch.timezone (schedules,
 * cron.c), dispatch.smtp_url, mail_from, notify_timeout and monitor_interval
 * (the monitor, monitor.c and notify.c), webhook_allow (target.c), and
 * dispatch.max_sql_command_size (the size of the SQL run slots in shared memory,
 * sqlslot.c).
 */
#include "pg_dispatch.h"
#include "notify.h"
#include "alloc.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool check_timezone(char **newval, void **extra, GucSource source);

/*
 * GUC variables.  The first seven are read from C (pg_dispatch.h); the others only
 * by SQL, through current_setting(), and live here so that they are defined.
 * The tables below give each its name, description, default and range; the one
 * boolean, dispatch.open_registration, is defined on its own.
 */
char	   *dispatch_database = NULL;
char	   *dispatch_timezone = NULL;
char	   *dispatch_smtp_url = NULL;
char	   *dispatch_mail_from = NULL;
char	   *dispatch_webhook_allow = NULL;
int			dispatch_notify_timeout = 10;
int			dispatch_monitor_interval = 10;
int			dispatch_max_sql_command_size = 64 * 1024;
static int	dispatch_notify_max_attempts = 10;
static int	dispatch_metrics_raw_retention = 2 * 86400;
static int	dispatch_metrics_minute_retention = 7 * 86400;
static int	dispatch_metrics_hour_retention = 365 * 86400;
static int	dispatch_presence_retention = 30 * 86400;
static int	dispatch_run_history_retention = 7 * 86400;
int			dispatch_node_timeout = 30;
static int	dispatch_default_time_limit = 0;
int			dispatch_max_reservations = ALLOC_DEFAULT_RESERVATIONS;
int			dispatch_max_job_test = ALLOC_DEFAULT_JOB_TEST;
int			dispatch_model_check_interval = 600;
static int	dispatch_kill_grace = 10;
static int	dispatch_max_output_bytes = 1024 * 1024;
static int	dispatch_max_file_size = 1024 * 1024;
static int	dispatch_max_job_files_size = 16 * 1024 * 1024;
static int	dispatch_max_node_resources = 16384;
static int	dispatch_max_node_labels = 64;
static int	dispatch_max_node_info_size = 1024 * 1024;
static int	dispatch_agent_report_max_batch = 1000;
static int	dispatch_agent_report_max_size = 16 * 1024 * 1024;
static int	dispatch_metrics_max_batch = 1000;
static int	dispatch_metrics_max_per_sample = 500;
static int	dispatch_metrics_max_sample_size = 256 * 1024;
static int	dispatch_metrics_max_future = 300;
static bool dispatch_open_registration = true;
static int	dispatch_max_jobs_per_joblist = 100000;
static int	dispatch_max_env_size = 128 * 1024;
static int	dispatch_max_goals_per_user = 100;
static int	dispatch_max_result_size = 64 * 1024;
static int	dispatch_max_signal_size = 64 * 1024;
static int	dispatch_max_blob_size = 64 * 1024 * 1024;
static int	dispatch_max_store_size = 1024;
static int	dispatch_max_rules_per_workspace = 1000;
static int	dispatch_max_artefacts_per_workspace = 100000;
static int	dispatch_max_follow_size = 1024 * 1024;
static int	dispatch_rebuild_delay = 500;

/* A text setting: its GUC, its variable and its check hook (or NULL). */
typedef struct TextSetting
{
	const char *name;
	const char *description;
	char	  **value;
	const char *boot;
	GucContext	context;
	GucStringCheckHook check;
} TextSetting;

/* An integer setting: its GUC, its variable, its range and unit (GUC flags). */
typedef struct IntSetting
{
	const char *name;
	const char *description;
	int		   *value;
	int			boot,
				min,
				max;
	GucContext	context;
	int			flags;
} IntSetting;

static const TextSetting text_settings[] = {
	{"dispatch.database", "Database in which the pg_dispatch scheduler runs.",
	&dispatch_database, "postgres", PGC_POSTMASTER, NULL},
	{"dispatch.timezone", "Time zone of goal schedules that name none.",
	&dispatch_timezone, "UTC", PGC_SIGHUP, check_timezone},
	{"dispatch.smtp_url", "SMTP server for mailto: notifications, e.g. smtp://mail.example.com:25.",
	&dispatch_smtp_url, "", PGC_SIGHUP, NULL},
	{"dispatch.mail_from", "Sender address of notification mails.",
	&dispatch_mail_from, "pg-dispatch@localhost", PGC_SIGHUP, target_check_mail_from},
	{"dispatch.webhook_allow", "Webhook destinations users may name: host[:port] or http[s]://host[:port][/path], comma-separated.",
	&dispatch_webhook_allow, "", PGC_SIGHUP, target_check_allow},
};

static const IntSetting int_settings[] = {
	{"dispatch.max_sql_command_size", "Largest command of a SQL job (shared memory for each background worker).",
	&dispatch_max_sql_command_size, 64 * 1024, 1024, 1024 * 1024, PGC_POSTMASTER, GUC_UNIT_BYTE},
	{"dispatch.node_timeout", "Silence after which a node goes offline and its jobs are lost.",
	&dispatch_node_timeout, 30, 1, 86400, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.kill_grace", "Time agents wait between SIGTERM and SIGKILL when stopping a job.",
	&dispatch_kill_grace, 10, 0, 3600, PGC_SIGHUP, GUC_UNIT_S},
	/* Backfill (src/core/alloc_backfill.c): the time limit of jobs without one, and depth. */
	{"dispatch.default_time_limit", "Time limit given to jobs submitted without a timeout (0: none).",
	&dispatch_default_time_limit, 0, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S},
	{"dispatch.max_reservations", "Waiting jobs, in queue order, for which the scheduler reserves units.",
	&dispatch_max_reservations, ALLOC_DEFAULT_RESERVATIONS, 1, 100000, PGC_SIGHUP, 0},
	{"dispatch.max_job_test", "Waiting jobs past the reservations that a scheduling cycle looks at before it stops.",
	&dispatch_max_job_test, ALLOC_DEFAULT_JOB_TEST, 1, 10000000, PGC_SIGHUP, 0},
	/* The scheduler's model (src/model_check.c): how often it checks it against the tables. */
	{"dispatch.model_check_interval", "Time between the scheduler's checks of its model against the tables (0: never).",
	&dispatch_model_check_interval, 600, 0, 30 * 86400, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.max_output_bytes", "Output stored per job attempt; the rest is cut off, visibly.",
	&dispatch_max_output_bytes, 1024 * 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.max_file_size", "Largest job file or command, before and after rendering.",
	&dispatch_max_file_size, 1024 * 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.max_job_files_size", "Largest total of one job's rendered files.",
	&dispatch_max_job_files_size, 16 * 1024 * 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_BYTE},
	/* What an agent may send (sql/src/38_agent_input.sql, docs/security.md). */
	{"dispatch.max_node_resources", "Resource instances and amounts one node may register.",
	&dispatch_max_node_resources, 16384, 1, 1000000, PGC_SUSET, 0},
	{"dispatch.max_node_labels", "Labels one node may register.",
	&dispatch_max_node_labels, 64, 0, 10000, PGC_SUSET, 0},
	{"dispatch.max_node_info_size", "Largest node registration (agent_register's info).",
	&dispatch_max_node_info_size, 1024 * 1024, 1024, INT_MAX, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.agent_report_max_batch", "Job reports an agent may send in one agent_report call.",
	&dispatch_agent_report_max_batch, 1000, 1, 100000, PGC_SUSET, 0},
	{"dispatch.agent_report_max_size", "Largest agent_report batch, as JSON text.",
	&dispatch_agent_report_max_size, 16 * 1024 * 1024, 64 * 1024, INT_MAX, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.metrics_max_batch", "Metric samples an agent may send in one call.",
	&dispatch_metrics_max_batch, 1000, 1, 100000, PGC_SUSET, 0},
	/* 600 int4 series ids still fit a btree entry of metric_layouts. */
	{"dispatch.metrics_max_per_sample", "Metrics one sample may carry.",
	&dispatch_metrics_max_per_sample, 500, 1, 600, PGC_SUSET, 0},
	{"dispatch.metrics_max_sample_size", "Largest metric sample, as JSON text.",
	&dispatch_metrics_max_sample_size, 256 * 1024, 1024, 16 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.metrics_max_future", "How far ahead of the server's clock a metric sample may be stamped.",
	&dispatch_metrics_max_future, 300, 0, 86400, PGC_SUSET, GUC_UNIT_S},
	/* What a user may submit (sql/src/30_joblists.sql, 72_goal_api.sql, docs/security.md). */
	{"dispatch.max_jobs_per_joblist", "Jobs one joblist may have.",
	&dispatch_max_jobs_per_joblist, 100000, 1, 10000000, PGC_SUSET, 0},
	{"dispatch.max_env_size", "Largest env of a job, as JSON text.",
	&dispatch_max_env_size, 128 * 1024, 1024, 64 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE},
	/* Data flows (sql/src/46_results.sql, 48_signals.sql): the agent reads at most 1 MB. */
	{"dispatch.max_result_size", "Largest result a job may leave at $DISPATCH_RESULT, as JSON text.",
	&dispatch_max_result_size, 64 * 1024, 0, 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.max_signal_size", "Largest payload of a signal, as JSON text.",
	&dispatch_max_signal_size, 64 * 1024, 0, 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE},
	/* Artefacts (sql/src/76_artefacts.sql .. 79_rebuilds.sql). */
	{"dispatch.max_blob_size", "Largest file the artefact store keeps (a watched source or a build's output).",
	&dispatch_max_blob_size, 64 * 1024 * 1024, 0, 1024 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.max_store_size", "Largest total size of the artefact store.",
	&dispatch_max_store_size, 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_MB},
	{"dispatch.max_rules_per_workspace", "Rules one workspace may have.",
	&dispatch_max_rules_per_workspace, 1000, 1, 100000, PGC_SUSET, 0},
	{"dispatch.max_artefacts_per_workspace", "Files one workspace may hold.",
	&dispatch_max_artefacts_per_workspace, 100000, 1, 10000000, PGC_SUSET, 0},
	{"dispatch.max_follow_size", "Bytes of a followed file kept, its latest.",
	&dispatch_max_follow_size, 1024 * 1024, 0, 64 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE},
	{"dispatch.rebuild_delay", "How long a workspace must be quiet after a change before its rebuild starts.",
	&dispatch_rebuild_delay, 500, 0, 3600 * 1000, PGC_SUSET, GUC_UNIT_MS},
	{"dispatch.max_goals_per_user", "Goals and SQL jobs one role may own (admins are exempt).",
	&dispatch_max_goals_per_user, 100, 0, 1000000, PGC_SUSET, 0},
	{"dispatch.run_history_retention", "How long finished goal runs and SQL job runs are kept.",
	&dispatch_run_history_retention, 7 * 86400, 60, INT_MAX, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.monitor_interval", "How often the monitor evaluates alert rules and sends notifications.",
	&dispatch_monitor_interval, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.notify_timeout", "Time allowed for sending one notification.",
	&dispatch_notify_timeout, 10, 1, 600, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.notify_max_attempts", "Attempts to send a notification before it is given up.",
	&dispatch_notify_max_attempts, 10, 1, 1000, PGC_SIGHUP, 0},
	{"dispatch.metrics_raw_retention", "How long raw metric samples are kept.",
	&dispatch_metrics_raw_retention, 2 * 86400, 3600, INT_MAX, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.metrics_minute_retention", "How long minute rollups of metrics are kept.",
	&dispatch_metrics_minute_retention, 7 * 86400, 3600, INT_MAX, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.metrics_hour_retention", "How long hour rollups of metrics are kept.",
	&dispatch_metrics_hour_retention, 365 * 86400, 3600, INT_MAX, PGC_SIGHUP, GUC_UNIT_S},
	{"dispatch.presence_retention", "How long the once-a-minute record of online nodes is kept.",
	&dispatch_presence_retention, 30 * 86400, 3600, INT_MAX, PGC_SIGHUP, GUC_UNIT_S},
};

/* Defines the GUCs, hooks the shared memory and registers the launcher. */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_dispatch must be loaded via shared_preload_libraries"),
				 errhint("Add pg_dispatch to shared_preload_libraries in postgresql.conf and restart the server.")));

	for (size_t i = 0; i < lengthof(text_settings); i++)
	{
		const TextSetting *t = &text_settings[i];

		DefineCustomStringVariable(t->name, t->description, NULL, t->value, t->boot,
								   t->context, 0, t->check, NULL, NULL);
	}
	for (size_t i = 0; i < lengthof(int_settings); i++)
	{
		const IntSetting *g = &int_settings[i];

		DefineCustomIntVariable(g->name, g->description, NULL, g->value, g->boot, g->min,
								g->max, g->context, g->flags, NULL, NULL, NULL);
	}
	DefineCustomBoolVariable("dispatch.open_registration",
							 "Whether an agent may register a node name no admin bound.",
							 NULL, &dispatch_open_registration, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("dispatch");

	scheduler_shmem_init();
	launcher_register();
}

/* Accepts a time zone name that PostgreSQL knows. */
static bool
check_timezone(char **newval, void **extra, GucSource source)
{
	if (pg_tzset(*newval) != NULL)
		return true;
	GUC_check_errdetail("Time zone \"%s\" is not recognized.", *newval);
	return false;
}
