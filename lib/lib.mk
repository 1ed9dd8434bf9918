# lib/lib.mk -- what a program needs to use lib/ (include it with LIBDIR set to lib/).
#   CPPFLAGS += -I$(LIBDIR); compile $(YAMLJSON_SRCS); link $(YAMLJSON_LIBS).
YAMLJSON_SRCS = $(LIBDIR)/yamljson.c $(LIBDIR)/yamlscalar.c $(LIBDIR)/yamlpath.c
YAMLJSON_HEADERS = $(LIBDIR)/yamljson.h $(LIBDIR)/yamljson_int.h
YAMLJSON_LIBS = -lyaml -ljansson
