# R/lmmlite side of bench_heritability.py. Usage:
#   Rscript r_lmmlite_bench.R recla DATA_DIR REPEATS
#   Rscript r_lmmlite_bench.R large WORK_DIR REPEATS   (K.bin, Y.bin, X.bin, dims.txt there)
# Prints machine-readable lines "TIME <step> <seconds>" and writes hsq values to a CSV.
suppressPackageStartupMessages(library(lmmlite))
args <- commandArgs(trailingOnly = TRUE)
case <- args[1]; dir <- args[2]; repeats <- as.integer(args[3])
median_time <- function(f) {
  times <- numeric(repeats)
  for (r in seq_len(repeats)) times[r] <- system.time(out <- f())[["elapsed"]]
  list(time = median(times), out = out)
}
if (case == "recla") {
  K <- as.matrix(read.csv(file.path(dir, "kinship.csv"), row.names = 1, check.names = FALSE))
  P <- as.matrix(read.csv(file.path(dir, "pheno.csv"), row.names = 1, check.names = FALSE))
  X <- as.matrix(read.csv(file.path(dir, "covar.csv"), row.names = 1, check.names = FALSE))
  run <- function() {
    # as R/lmmlite's own tests: per phenotype, drop NAs, rotate, fit (C++ path)
    hsq <- numeric(ncol(P))
    for (j in seq_len(ncol(P))) {
      keep <- !is.na(P[, j])
      e <- eigen_rotation(K[keep, keep], P[keep, j], X[keep, , drop = FALSE])
      hsq[j] <- fitLMM(e$Kva, e$y, e$X, reml = TRUE, tol = 1e-8)$hsq
    }
    hsq
  }
  res <- median_time(run)
  cat(sprintf("TIME total %.6f\n", res$time))
  write.csv(data.frame(phenotype = colnames(P), hsq = res$out),
            file.path(Sys.getenv("BENCH_OUT", "."), "r_recla_hsq.csv"), row.names = FALSE)
} else if (case == "large") {
  dims <- scan(file.path(dir, "dims.txt"), quiet = TRUE)
  n <- dims[1]; t <- dims[2]; p <- dims[3]
  readm <- function(name, nr, nc) matrix(readBin(file.path(dir, name), "double", nr * nc),
                                         nr, nc)
  K <- readm("K.bin", n, n); Y <- readm("Y.bin", n, t); X <- readm("X.bin", n, p)
  rot <- median_time(function() eigen_rotation(K, Y, X))
  e <- rot$out
  fit <- median_time(function() {
    vapply(seq_len(t), function(j) fitLMM(e$Kva, e$y[, j], e$X, tol = 1e-4)$hsq, 0.0)
  })
  cat(sprintf("TIME eigen_rotation %.6f\n", rot$time))
  cat(sprintf("TIME fit %.6f\n", fit$time))
  cat(sprintf("TIME total %.6f\n", rot$time + fit$time))
  write.csv(data.frame(hsq = fit$out), file.path(Sys.getenv("BENCH_OUT", "."),
                                                  "r_large_hsq.csv"), row.names = FALSE)
}
