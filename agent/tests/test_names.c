/*
 * test_names.c -- names.c: the node-name, resource-type and label-key patterns,
 * one edge per line, the same edges the server's SQL patterns draw.
 */
#include "unit.h"

void
test_names(void)
{
	char		longest[64];

	CHECK(names_node_ok("w1"));
	CHECK(names_node_ok("A"));
	CHECK(names_node_ok("0node"));
	CHECK(names_node_ok("gpu-01.rack_2"));
	CHECK(!names_node_ok(""));
	CHECK(!names_node_ok("-w1"));
	CHECK(!names_node_ok(".w1"));
	CHECK(!names_node_ok("_w1"));
	CHECK(!names_node_ok("w 1"));
	CHECK(!names_node_ok("w1/x"));
	CHECK(!names_node_ok("w1\n"));
	CHECK(!names_node_ok("n\xc3\xa9"));
	memset(longest, 'n', 48);
	longest[48] = '\0';
	CHECK(names_node_ok(longest));
	longest[48] = 'n';
	longest[49] = '\0';
	CHECK(!names_node_ok(longest));

	CHECK(names_type_ok("gpu"));
	CHECK(names_type_ok("mem_mb"));
	CHECK(names_type_ok("a1"));
	CHECK(!names_type_ok(""));
	CHECK(!names_type_ok("Gpu"));
	CHECK(!names_type_ok("1gpu"));
	CHECK(!names_type_ok("_gpu"));
	CHECK(!names_type_ok("gpu-x"));
	CHECK(!names_type_ok("gpu.x"));
	memset(longest, 't', 63);
	longest[63] = '\0';
	CHECK(names_type_ok(longest));
	{
		char		over[65];

		memset(over, 't', 64);
		over[64] = '\0';
		CHECK(!names_type_ok(over));
	}

	CHECK(names_label_key_ok("rack"));
	CHECK(names_label_key_ok("_x.y-z"));
	CHECK(names_label_key_ok("-lead"));
	CHECK(!names_label_key_ok(""));
	CHECK(!names_label_key_ok("a b"));
	CHECK(!names_label_key_ok("a=b"));
	memset(longest, 'k', 63);
	longest[63] = '\0';
	CHECK(names_label_key_ok(longest));
}
