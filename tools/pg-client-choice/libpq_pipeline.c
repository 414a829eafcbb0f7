// Same workload through libpq's pipeline mode: BEGIN, N inserts, COMMIT sent at once, one sync.
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "%s", PQerrorMessage(c)); return 1; }
    int tx = atoi(argv[2]), st = atoi(argv[3]);
    PQclear(PQexec(c, "CREATE TABLE IF NOT EXISTS pq_t (id bigint, body text)"));
    PQclear(PQprepare(c, "ins", "INSERT INTO pq_t VALUES ($1::bigint, $2)", 2, NULL));
    for (int round = 0; round < 2; round++) {
        double t0 = now(); long n = 0; char idbuf[32];
        for (int t = 0; t < tx; t++) {
            PQenterPipelineMode(c);
            PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
            for (int i = 0; i < st; i++) {
                snprintf(idbuf, sizeof idbuf, "%ld", ++n);
                const char *v[2] = { idbuf, "attempt row body" };
                PQsendQueryPrepared(c, "ins", 2, v, NULL, NULL, 0);
            }
            PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
            PQpipelineSync(c);
            int syncs = 0;
            while (!syncs) {
                PGresult *r = PQgetResult(c);
                if (!r) continue;
                if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) syncs = 1;
                else if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) { fprintf(stderr, "%s", PQresultErrorMessage(r)); return 1; }
                PQclear(r);
            }
            PQexitPipelineMode(c);
        }
        double s = now() - t0;
        printf("libpq pipeline:          %d transactions x %d inserts in %.3f s = %.2f ms per transaction\n", tx, st, s, s * 1000 / tx);
    }
    PQfinish(c);
    return 0;
}
