/* SPDX-License-Identifier: MIT */
/* settings.c — the settings table and settings(run)'s validation (see
 * settings.h). */
#include "plan/settings.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

const struct vm_setting vm_settings[] = {
#define VM_SETTING_ROW_(key, option, bit, min, max, def, choices)                                  \
    {#key, option, bit, min, max, def, choices},
    VM_SETTINGS(VM_SETTING_ROW_)
#undef VM_SETTING_ROW_
        {0},
};

const struct vm_setting *vm_setting_find(const char *key)
{
    for (const struct vm_setting *s = vm_settings; s->key; s++)
        if (strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

/* Lua numbers arrive as JSON integers or reals; a real that is whole will do. */
static bool whole_in(json_t *v, int64_t min, int64_t max, int64_t *out)
{
    double x = json_number_value(v);
    if (!json_is_number(v) || !isfinite(x) || x != floor(x) || x < (double)min || x > (double)max)
        return false;
    *out = (int64_t)x;
    return true;
}

/* The index of word in choices ("a|b|c"), or -1. */
static int choice_index(const char *choices, const char *word)
{
    size_t len = strlen(word);
    int i = 0;
    for (const char *p = choices;; i++) {
        size_t n = strcspn(p, "|");
        if (n == len && strncmp(p, word, len) == 0)
            return i;
        if (!p[n])
            return -1;
        p += n + 1;
    }
}

/* The i-th word of choices; caller frees. */
static char *choice_word(const char *choices, int64_t i)
{
    const char *p = choices;
    for (; i > 0 && strchr(p, '|'); i--)
        p = strchr(p, '|') + 1;
    return xstrndup(p, strcspn(p, "|"));
}

/* "'a' or 'b'", "'a', 'b' or 'c'"; caller frees. */
static char *choices_said(const char *choices)
{
    char *s = xstrdup("");
    for (const char *p = choices; *p;) {
        size_t n = strcspn(p, "|");
        const char *sep = !*s ? "" : p[n] ? ", " : " or ";
        char *t = xasprintf("%s%s'%.*s'", s, sep, (int)n, p);
        free(s);
        s = t;
        p += p[n] ? n + 1 : n;
    }
    return s;
}

static void set_value(struct vm_run_settings *s, unsigned bit, int64_t v)
{
    switch (bit) {
    case VM_SET_PARALLEL:
        s->parallel = (int)v;
        break;
    case VM_SET_MAX_OUT:
        s->max_out = (int)v;
        break;
    case VM_SET_MAX_IN:
        s->max_in = (int)v;
        break;
    case VM_SET_MAX_FAILURES:
        s->max_failures = (int)v;
        break;
    case VM_SET_RETRIES:
        s->retries = (int)v;
        break;
    case VM_SET_DEADLINE:
        s->deadline_s = (unsigned)v;
        break;
    case VM_SET_ON_ABORT:
        s->on_abort = (enum vm_on_abort)v;
        break;
    }
}

static int64_t get_value(const struct vm_run_settings *s, unsigned bit)
{
    switch (bit) {
    case VM_SET_PARALLEL:
        return s->parallel;
    case VM_SET_MAX_OUT:
        return s->max_out;
    case VM_SET_MAX_IN:
        return s->max_in;
    case VM_SET_MAX_FAILURES:
        return s->max_failures;
    case VM_SET_RETRIES:
        return s->retries;
    case VM_SET_DEADLINE:
        return s->deadline_s;
    case VM_SET_ON_ABORT:
        return s->on_abort;
    }
    return 0;
}

/* One key of the table's rows: 0, or -1 and *err. */
static int parse_row(const struct vm_setting *row, json_t *v, struct vm_run_settings *out,
                     char **err)
{
    int64_t n;
    if (row->choices) {
        const char *s = json_string_value(v);
        n = s ? choice_index(row->choices, s) : -1;
        if (n < 0) {
            char *said = choices_said(row->choices);
            *err = xasprintf("settings: %s must be %s", row->key, said);
            free(said);
            return -1;
        }
    } else if (!whole_in(v, row->min, row->max, &n)) {
        *err = xasprintf("settings: %s must be an integer from %lld to %lld", row->key,
                         (long long)row->min, (long long)row->max);
        return -1;
    }
    set_value(out, row->bit, n);
    out->set |= row->bit;
    return 0;
}

/* notify: at most 16 http(s) URLs, added to --notify's. */
static int parse_notify(json_t *v, struct vm_run_settings *out, char **err)
{
    size_t k;
    json_t *u;
    if (!json_is_array(v) || json_array_size(v) > 16) {
        *err = xstrdup("settings: notify must be a list of at most 16 URLs");
        return -1;
    }
    json_array_foreach(v, k, u)
    {
        const char *url = json_string_value(u);
        if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
            *err = xasprintf("settings: notify[%zu] must be an http:// or https:// URL", k + 1);
            return -1;
        }
    }
    out->notify = json_incref(v);
    out->set |= VM_SET_NOTIFY;
    return 0;
}

int vm_settings_parse(json_t *j, struct vm_run_settings *out, char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    if (json_is_array(j) && json_array_size(j) == 0)
        return 0; /* an empty Lua table */
    if (!json_is_object(j)) {
        *err = xstrdup("settings() must return a table (or nil)");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        const struct vm_setting *row = vm_setting_find(key);
        int rc = -1;
        if (row)
            rc = parse_row(row, v, out, err);
        else if (strcmp(key, "notify") == 0)
            rc = parse_notify(v, out, err);
        else
            *err = xasprintf("settings: unknown key '%s'", key);
        if (rc < 0) {
            vm_settings_clear(out);
            return -1;
        }
    }
    return 0;
}

void vm_settings_clear(struct vm_run_settings *s)
{
    json_decref(s->notify);
    memset(s, 0, sizeof(*s));
}

json_t *vm_settings_to_json(const struct vm_run_settings *s)
{
    json_t *o = json_object();
    for (const struct vm_setting *row = vm_settings; row->key; row++) {
        if (!(s->set & row->bit))
            continue;
        int64_t v = get_value(s, row->bit);
        if (row->choices) {
            char *word = choice_word(row->choices, v);
            json_object_set_new(o, row->key, json_string(word));
            free(word);
        } else {
            json_object_set_new(o, row->key, json_integer((json_int_t)v));
        }
    }
    if (s->set & VM_SET_NOTIFY)
        json_object_set(o, "notify", s->notify);
    return o;
}
