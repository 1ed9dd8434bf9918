/*
 * files.c: the web page's static files (web/static/ or --static DIR).
 *
 * Only "/" (index.html) and "/static/NAME" are served, NAME being a plain file name
 * of lower-case letters, digits, '-' and '_' with one of a few known extensions: no
 * path ever reaches the file system from the URL, so there is nothing to traverse.
 * The page is behind the same login as the API, so a browser asks for it once.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web.h"

static const struct
{
	const char *ext;
	const char *type;
}			types[] = {
	{".html", "text/html; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
};

/* Returns true when url may name a page file (not the API, not /metrics). */
bool
files_is_page(const char *url)
{
	return strncmp(url, "/api/", 5) != 0 && strcmp(url, "/api") != 0 &&
		strcmp(url, "/metrics") != 0;
}

/* Returns the content type of a served file name, or NULL when name is not one. */
static const char *
file_type(const char *name)
{
	size_t		stem = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_");

	if (stem == 0 || stem > 64)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(name + stem, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* Serves a page file, or 404. */
enum MHD_Result
files_serve(Request *req)
{
	const char *name = strcmp(req->url, "/") == 0 ? "index.html" :
		strncmp(req->url, "/static/", 8) == 0 ? req->url + 8 : "";
	const char *type = file_type(name);
	char		path[4096];
	struct stat st;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int			fd = -1;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
		return http_error(req, 405, "42601", "method not allowed", NULL);
	if (type != NULL)
	{
		snprintf(path, sizeof(path), "%s/%s", web_config.static_dir, name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		if (fd >= 0)
			close(fd);
		return http_error(req, 404, "58P01", "no such page", NULL);
	}
	resp = MHD_create_response_from_fd(st.st_size, fd);
	if (resp == NULL)
	{
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	http_add_common_headers(resp);
	req->status = 200;
	ret = MHD_queue_response(req->mhd, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}
