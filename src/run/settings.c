/* SPDX-License-Identifier: MIT */
/* settings.c — the policy's settings(run) merged under the command line
 * (run_priv.h): what the command line gave wins; webhooks are both. */
#include "run/run_priv.h"

#include <stdio.h>
#include <stdlib.h>

#include "policy/policy.h"
#include "util/exitcode.h"
#include "util/util.h"

/* Call the policy's settings(run) and make *eff: the spec with the
 * policy's values where the command line gave none (webhooks: both).
 * Returns 0, or an exit code after a one-line error (the policy failed:
 * nothing has been touched). */
int run_settings_apply(struct job *job, const struct vm_job_spec *spec, const char *cmd,
                       struct vm_job_spec *eff)
{
    json_t *run = json_pack("{s:s, s:o, s:o}", "command", cmd, "sources",
                            run_uri_list(spec->sources, spec->nsources), "targets",
                            run_uri_list(spec->targets, spec->ntargets));
    char *err = NULL;
    struct vm_run_settings st;
    int rc = vm_policy_settings(job->policy, run, &st, &err);
    json_decref(run);
    if (rc < 0) {
        vm_error("%s: %s", cmd, err);
        free(err);
        return VM_EXIT_POLICY;
    }
    *eff = *spec;
    unsigned use = st.set & ~spec->given;
    if (use & VM_SET_PARALLEL)
        eff->concurrency = st.parallel;
    if (use & VM_SET_MAX_OUT)
        eff->max_out = st.max_out;
    if (use & VM_SET_MAX_IN)
        eff->max_in = st.max_in;
    if (use & VM_SET_MAX_FAILURES)
        eff->max_failures = st.max_failures;
    if (use & VM_SET_RETRIES)
        eff->retries = st.retries;
    if (use & VM_SET_DEADLINE)
        eff->deadline_s = st.deadline_s;
    if (use & VM_SET_ON_ABORT)
        eff->on_abort = st.on_abort;
    /* Kept for the report; the webhook URLs below point into it. */
    job->settings = vm_settings_to_json(&st);
    vm_settings_clear(&st);
    json_t *policy_urls = json_object_get(job->settings, "notify");
    if (policy_urls) {
        /* The policy's webhooks and the command line's: all of them. */
        size_t n = json_array_size(policy_urls);
        const char **urls = xcalloc((size_t)spec->nnotify + n + 1, sizeof(*urls));
        for (int i = 0; i < spec->nnotify; i++)
            urls[i] = spec->notify_urls[i];
        for (size_t i = 0; i < n; i++)
            urls[(size_t)spec->nnotify + i] = json_string_value(json_array_get(policy_urls, i));
        eff->notify_urls = urls;
        eff->nnotify = spec->nnotify + (int)n;
        job->settings_notify = urls;
    }
    char *txt = json_dumps(job->settings, JSON_COMPACT);
    vm_info("%s: settings from the policy: %s", cmd, txt ? txt : "{}");
    free(txt);
    return 0;
}
